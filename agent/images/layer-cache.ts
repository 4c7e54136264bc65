/**
 * @module The layer cache on disk: one extracted directory per layer, named
 * by its diff_id (the uncompressed tar's digest: what an overlay lower
 * directory is, whatever compression carried it), shared by all containers.
 *
 * Layout under the cache root:
 * - `layers/<algo>-<hex>[-shift-<n>]/` — verified lower directories;
 * - `tmp/` — extractions in progress: a layer only leaves it by rename once
 *   both its digests are verified, and the whole folder is emptied at open,
 *   so a crash mid-pull leaves nothing the next start could take for a layer;
 * - `state.json` — sizes, last use and holders (containers), written
 *   atomically (temp file + rename), so reference counts survive a restart.
 *
 * Concurrent requests for one layer share one extraction (singleflight),
 * with a deadline, and one puller's failure is not another's.
 */
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { layerDiskBytes } from "./cache-budget";
import { planEviction } from "./eviction";

const stateSchema = z.object({
  version: z.literal(1),
  layers: z.record(
    z.string(),
    z.object({
      sizeBytes: z.number().int().min(0),
      /** Tar entries (inodes), for the image's entry cap; 0 in records written before it was kept. */
      entries: z.number().int().min(0).default(0),
      lastUsedMs: z.number(),
      blobDigests: z.array(z.string()),
      holders: z.array(z.string()),
    }),
  ),
});
type State = z.infer<typeof stateSchema>;
export type LayerRecord = State["layers"][string];

/** What a fill reports of the layer it wrote. */
export interface FilledLayer {
  sizeBytes: number;
  entries: number;
}

export interface LayerCacheOptions {
  now?: () => number;
  /** How long a pull waits on another pull's fill of the same layer before fetching it itself (default 2 min). */
  sharedFillWaitMs?: number;
}

/** Whether `p` settled (fulfilled or not) within `ms`. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<"settled" | "late"> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), ms)));
  try {
    return await Promise.race([p.then(() => "settled" as const, () => "settled" as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The cache key of a layer: its diff_id, plus the id shift for the chown fallback. */
export function layerKey(diffId: string, idShift = 0): string {
  const [algo, hex] = diffId.split(":");
  if (!algo || !hex || !/^[a-z0-9]+$/.test(algo) || !/^[a-f0-9]+$/.test(hex)) throw new Error(`invalid diff_id ${JSON.stringify(diffId)}`);
  return idShift ? `${algo}-${hex}-shift-${idShift}` : `${algo}-${hex}`;
}

export class LayerCache {
  private state: State = { version: 1, layers: {} };
  private readonly inflight = new Map<string, Promise<string>>();
  private saving: Promise<void> = Promise.resolve();
  /** Disk of evicted layers not yet deleted: still counted by diskBytes(). */
  private removingBytes = 0;
  private readonly now: () => number;
  private readonly sharedFillWaitMs: number;

  private constructor(
    readonly root: string,
    opts: LayerCacheOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.sharedFillWaitMs = opts.sharedFillWaitMs ?? 120_000;
  }

  /** Opens (creating) the cache at root: empties tmp/, reloads state, drops what is not both recorded and on disk. */
  static async open(root: string, opts: LayerCacheOptions = {}): Promise<LayerCache> {
    const cache = new LayerCache(root, opts);
    await rm(join(root, "tmp"), { recursive: true, force: true });
    await mkdir(join(root, "tmp"), { recursive: true });
    await mkdir(join(root, "layers"), { recursive: true });
    const text = await readFile(join(root, "state.json"), "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return null;
      throw err;
    });
    if (text !== null) cache.state = stateSchema.parse(JSON.parse(text));
    const onDisk = new Set(await readdir(join(root, "layers")));
    for (const key of Object.keys(cache.state.layers)) if (!onDisk.has(key)) delete cache.state.layers[key];
    // A directory renamed into place just before a crash, whose record was never saved: size unknown, so drop it.
    for (const key of onDisk) if (!cache.state.layers[key]) await rm(join(root, "layers", key), { recursive: true, force: true });
    await cache.save();
    return cache;
  }

  path(key: string): string {
    return join(this.root, "layers", key);
  }

  has(key: string): boolean {
    return key in this.state.layers;
  }

  record(key: string): LayerRecord | undefined {
    return this.state.layers[key];
  }

  /** Every blob digest and diff_id the cache can serve (for heartbeats). */
  cachedDigests(): string[] {
    const out = new Set<string>();
    for (const [key, r] of Object.entries(this.state.layers)) {
      if (!key.includes("-shift-")) out.add(key.replace("-", ":"));
      for (const d of r.blobDigests) out.add(d);
    }
    return [...out].sort();
  }

  totalBytes(): number {
    return Object.values(this.state.layers).reduce((sum, r) => sum + r.sizeBytes, 0);
  }

  /** What the cache's budget counts (cache-budget.ts): every layer's disk charge, and those being deleted. */
  diskBytes(): number {
    return Object.values(this.state.layers).reduce((sum, r) => sum + layerDiskBytes(r), this.removingBytes);
  }

  /**
   * Returns the layer's directory and whether this call filled it. A cached
   * layer serves only a blob digest seen to produce it (the caller then
   * proves access to that blob on its own registry); any other blob is
   * fetched and verified by `fill(tmpDir) → size and entries` first, so a
   * manifest cannot claim another tenant's diff_id. Callers asking for a
   * layer being filled wait on that fill, but not past `sharedFillWaitMs`
   * and not for its failure: then they fill it themselves. A failed fill
   * leaves nothing behind.
   */
  async ensure(key: string, blobDigest: string, fill: (tmpDir: string) => Promise<FilledLayer>): Promise<{ path: string; filled: boolean }> {
    for (;;) {
      const existing = this.state.layers[key];
      if (existing?.blobDigests.includes(blobDigest)) {
        // Kept in memory: the pull's acquire() that follows persists it.
        existing.lastUsedMs = this.now();
        return { path: this.path(key), filled: false };
      }
      if (existing) return { path: await this.fill(key, blobDigest, fill), filled: true };
      const pending = this.inflight.get(key);
      if (!pending) {
        const mine = this.fill(key, blobDigest, fill).finally(() => this.inflight.delete(key));
        this.inflight.set(key, mine);
        return { path: await mine, filled: true };
      }
      if ((await settledWithin(pending, this.sharedFillWaitMs)) === "late") return { path: await this.fill(key, blobDigest, fill), filled: true };
      // Done (look again: the blob may differ) or failed (this pull fills it itself).
    }
  }

  private async fill(key: string, blobDigest: string, fill: (tmpDir: string) => Promise<FilledLayer>): Promise<string> {
    const tmp = await mkdtemp(join(this.root, "tmp", `${key}-`));
    let filled: FilledLayer;
    try {
      filled = await fill(tmp);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    const existing = this.state.layers[key];
    if (existing) {
      // Another fill of the layer finished first (or this one verified another blob of it): keep that one.
      await rm(tmp, { recursive: true, force: true });
      if (!existing.blobDigests.includes(blobDigest)) existing.blobDigests.push(blobDigest);
      await this.save();
      return this.path(key);
    }
    try {
      await rename(tmp, this.path(key));
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      // Two fills of one layer racing to rename: the loser serves the winner's directory.
      if ((err as NodeJS.ErrnoException).code === "ENOTEMPTY" || (err as NodeJS.ErrnoException).code === "EEXIST") return this.path(key);
      throw err;
    }
    this.state.layers[key] = { ...filled, lastUsedMs: this.now(), blobDigests: [blobDigest], holders: [] };
    await this.save();
    return this.path(key);
  }

  /** Records that `holder` (a container) uses these layers; idempotent. */
  async acquire(holder: string, keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const r = this.state.layers[key];
      if (!r) throw new Error(`layer ${key} is not in the cache`);
      if (!r.holders.includes(holder)) r.holders.push(holder);
      r.lastUsedMs = this.now();
    }
    await this.save();
  }

  /** Drops every reference `holder` has; idempotent. */
  async release(holder: string): Promise<void> {
    for (const r of Object.values(this.state.layers)) {
      const i = r.holders.indexOf(holder);
      if (i >= 0) r.holders.splice(i, 1);
    }
    await this.save();
  }

  /**
   * Deletes least recently used layers no container holds until the
   * cache's disk charge fits under the threshold. `pinned` are layers of
   * pulls still running.
   */
  async collect(thresholdBytes: number, pinned: ReadonlySet<string> = new Set()): Promise<string[]> {
    const infos = Object.entries(this.state.layers).map(([key, r]) => ({
      key,
      sizeBytes: layerDiskBytes(r),
      lastUsedMs: r.lastUsedMs,
      inUse: r.holders.length > 0 || pinned.has(key),
    }));
    const evict = planEviction(infos, thresholdBytes);
    if (evict.length === 0) return [];
    const sizes = new Map(evict.map((key) => [key, layerDiskBytes(this.state.layers[key]!)]));
    for (const key of evict) {
      this.removingBytes += sizes.get(key)!;
      delete this.state.layers[key];
    }
    try {
      await this.save();
      for (const key of evict) {
        // Renamed away first, so a crash mid-delete never leaves a half layer under its name.
        const doomed = join(this.root, "tmp", `evict-${key}`);
        await rename(this.path(key), doomed);
        await rm(doomed, { recursive: true, force: true });
        this.removingBytes -= sizes.get(key)!;
        sizes.delete(key);
      }
    } finally {
      // After a failed delete, what is left unrecorded is removed by the next open (tmp/ and unrecorded layers).
      for (const bytes of sizes.values()) this.removingBytes -= bytes;
    }
    return evict;
  }

  private save(): Promise<void> {
    const text = JSON.stringify(this.state);
    this.saving = this.saving.catch(() => undefined).then(async () => {
      const tmp = join(this.root, "state.json.tmp");
      await writeFile(tmp, text);
      await rename(tmp, join(this.root, "state.json"));
    });
    return this.saving;
  }
}
