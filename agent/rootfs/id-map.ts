/**
 * @module The id range of a container, as the kernel's map files want it:
 * container ids 0..size-1 are host ids base..base+size-1 (a subordinate
 * range, never host root).
 */
export interface IdRange {
  /** Host uid/gid of the container's root. */
  base: number;
  /** How many ids the container gets (65536 covers nobody/nogroup). */
  size: number;
}

export function checkIdRange(r: IdRange): void {
  if (!Number.isInteger(r.base) || r.base <= 0) throw new RangeError(`uid base must be a positive integer (never host root), got ${r.base}`);
  if (!Number.isInteger(r.size) || r.size <= 0 || r.base + r.size > 2 ** 32 - 1) throw new RangeError(`id range ${r.base}+${r.size} does not fit in 32-bit ids`);
}

/** The line /proc/PID/uid_map and gid_map take for this range. */
export function idMapLine(r: IdRange): string {
  checkIdRange(r);
  return `0 ${r.base} ${r.size}\n`;
}
