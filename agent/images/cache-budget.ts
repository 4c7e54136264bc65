/**
 * @module The layer cache's own budget: what the cached layers and the
 * layers being written may take of the cell's disk together. A layer is
 * charged while it is written: its tar bytes and one block per entry and for
 * its own directory, so the charge is at least what `du` finds (a file's
 * last partial block, a directory's block). A charge that would pass the
 * budget first evicts least recently used layers that no container holds and
 * no pull is using; if that is not enough the layer fails with CACHE_FULL
 * naming the budget and the sizes. Nothing is ever written past the budget,
 * so the cache cannot fill the host (Kubernetes' image GC and GrootFS'
 * threshold evict the same way; the refusal is what keeps a burst of pulls
 * inside the budget).
 *
 * @example
 * const budget = new CacheBudget(cache, cacheBudgetBytes(config.layer_cache_max_bytes, fsBytes));
 * const charge = budget.charge("sha256:…");
 * try { await charge.take(n); } finally { charge.done(); }
 */
import type { LayerCache } from "./layer-cache";
import { LayerError } from "./layer-error";

/** What one entry may take on disk beyond its bytes (an ext4/xfs block). */
export const ENTRY_DISK_BYTES = 4096;

/** The disk a cached layer is charged for: its tar bytes and a block per entry and for its own directory. */
export function layerDiskBytes(r: { sizeBytes: number; entries: number }): number {
  return r.sizeBytes + (r.entries + 1) * ENTRY_DISK_BYTES;
}

/** The agent's `layer_cache_max_bytes`: bytes, or a percentage of the filesystem holding the cache. */
export type CacheBudgetSetting = number | string;

/** Resolves the setting against the size of the filesystem that holds the cache. */
export function cacheBudgetBytes(setting: CacheBudgetSetting, filesystemBytes: number): number {
  if (typeof setting === "number") return setting;
  const match = /^(\d{1,2}(?:\.\d+)?)%$/.exec(setting);
  if (!match) throw new Error(`layer cache budget ${JSON.stringify(setting)} must be bytes or a percentage such as "50%"`);
  return Math.floor((filesystemBytes * Number(match[1])) / 100);
}

/** One layer's running charge; `done()` once the layer is in the cache or thrown away. */
export interface LayerCharge {
  /** Charges `n` more bytes; waits while room is made, throws CACHE_FULL when there is none. */
  take(n: number): void | Promise<void>;
  /** Bytes `take` would charge now without making room. */
  room(): number;
  done(): void;
}

export class CacheBudget {
  /** Bytes charged to layers being written (their tmp directories). */
  private writing = 0;
  /** Layers pulls in progress use, with how many pulls: never evicted. */
  private readonly pinned = new Map<string, number>();
  private evicting: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly cache: LayerCache,
    readonly maxBytes: number,
  ) {}

  /** Bytes the cache takes now: cached layers (and ones being removed) plus layers being written. */
  usedBytes(): number {
    return this.cache.diskBytes() + this.writing;
  }

  pin(keys: readonly string[]): void {
    for (const k of keys) this.pinned.set(k, (this.pinned.get(k) ?? 0) + 1);
  }

  unpin(keys: readonly string[]): void {
    for (const k of keys) {
      const n = (this.pinned.get(k) ?? 1) - 1;
      if (n > 0) this.pinned.set(k, n);
      else this.pinned.delete(k);
    }
  }

  charge(layer: string): LayerCharge {
    let charged = 0;
    const add = (n: number) => {
      charged += n;
      this.writing += n;
    };
    return {
      take: (bytes) => {
        // The layer's own directory comes with its first charge, as layerDiskBytes counts it.
        const n = charged === 0 ? bytes + ENTRY_DISK_BYTES : bytes;
        if (this.usedBytes() + n <= this.maxBytes) return add(n);
        return this.makeRoom(layer, n, add);
      },
      room: () => Math.max(0, this.maxBytes - this.usedBytes() - (charged === 0 ? ENTRY_DISK_BYTES : 0)),
      done: () => {
        this.writing -= charged;
        charged = 0;
      },
    };
  }

  /**
   * One at a time, so two layers waiting for room never count the same
   * freed bytes; the bytes are added before the lock is let go.
   */
  private makeRoom(layer: string, n: number, add: (n: number) => void): Promise<void> {
    const run = this.evicting.then(async () => {
      if (this.usedBytes() + n > this.maxBytes) await this.cache.collect(this.maxBytes - this.writing - n, new Set(this.pinned.keys()));
      const cached = this.cache.diskBytes();
      if (cached + this.writing + n > this.maxBytes)
        throw new LayerError(
          "CACHE_FULL",
          `the layer cache's budget of ${this.maxBytes} bytes is used up: layer ${layer} needs ${n} more bytes, ` +
            `${cached} are cached layers that running containers or pulls in progress hold, ${this.writing} are layers being written`,
        );
      add(n);
    });
    this.evicting = run.catch(() => undefined);
    return run;
  }
}
