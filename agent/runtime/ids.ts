/**
 * @module Subordinate id ranges: container slot N maps container ids
 * 0..size-1 to host ids base + N*size onwards, so container root is never host
 * root and no two containers share an id. The rootfs idmaps lower layers with
 * the same range, so it takes this type too.
 */
import type { NativeIdMapping } from "../native/container";

export interface IdRangeOptions {
  /** First host id of slot 0 (default 100000, like /etc/subuid ranges). */
  base: number;
  /** Ids per container (65536: every 16-bit uid an image may use). */
  size: number;
}

export const DEFAULT_ID_RANGE: IdRangeOptions = { base: 100_000, size: 65_536 };
const MAX_HOST_ID = 0xffffffff - 1;

export interface IdRange {
  /** Host uid/gid of the container's root. */
  hostId: number;
  /** How many ids the container gets (65536 covers nobody/nogroup). */
  size: number;
}

export function checkIdRange(r: IdRange): void {
  if (!Number.isInteger(r.hostId) || r.hostId <= 0) throw new RangeError(`uid base must be a positive integer (never host root), got ${r.hostId}`);
  if (!Number.isInteger(r.size) || r.size <= 0 || r.hostId + r.size - 1 > MAX_HOST_ID) throw new RangeError(`id range ${r.hostId}+${r.size} does not fit in 32-bit ids`);
}

export function idRangeForSlot(slot: number, opts: IdRangeOptions = DEFAULT_ID_RANGE): IdRange {
  if (!Number.isInteger(slot) || slot < 0) throw new RangeError(`id slot must be a non-negative integer, got ${slot}`);
  if (opts.base < 1) throw new RangeError("id base must be above 0: container root may never be host root");
  const hostId = opts.base + slot * opts.size;
  if (hostId + opts.size - 1 > MAX_HOST_ID) throw new RangeError(`id slot ${slot} runs past the largest host id`);
  return { hostId, size: opts.size };
}

/** The single-line map written to /proc/PID/uid_map and gid_map. */
export function idMap(range: IdRange): NativeIdMapping[] {
  return [{ containerId: 0, hostId: range.hostId, size: range.size }];
}

/** The same map as the text line /proc/PID/uid_map and gid_map take. */
export function idMapLine(r: IdRange): string {
  checkIdRange(r);
  return `0 ${r.hostId} ${r.size}\n`;
}

/** The lowest slot no live container uses. */
export function freeSlot(used: Iterable<number>, maxSlots: number): number | null {
  const taken = new Set(used);
  for (let s = 0; s < maxSlots; s++) if (!taken.has(s)) return s;
  return null;
}
