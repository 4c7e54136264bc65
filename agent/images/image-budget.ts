/**
 * @module What one image may take of the cell: entries (inodes) and
 * uncompressed bytes over all its layers. One budget is shared by the layers of a
 * pull, extracted in parallel; layers already cached are charged from their
 * records first. Past either cap the layer being written fails with
 * IMAGE_TOO_LARGE, so nothing is written beyond the cap. A pull for an
 * instance also holds the image to the instance's disk quota.
 */
import { imageOverQuota } from "../../shared/staging/image-size";
import { LayerError } from "./layer-error";

export interface ImageLimits {
  maxEntries: number;
  maxBytes: number;
}

export class ImageBudget {
  /**
   * [entries, bytes] taken so far, on shared memory: the native extractor
   * (agent/native/layer.d.ts) charges them atomically from its worker threads
   * as layers stream in parallel.
   */
  readonly counters = new BigInt64Array(new SharedArrayBuffer(16));

  constructor(
    private readonly limits: ImageLimits,
    private readonly image: string,
    /** The instance's disk quota: the image counts against it (Garden's DiskLimitScopeTotal). */
    private readonly diskQuotaMb?: number,
  ) {}

  /** The caps the extractor charges the counters against: entries, and bytes (the disk quota when it is smaller). */
  get caps(): ImageLimits {
    const quota = this.diskQuotaMb === undefined ? Infinity : this.diskQuotaMb * 1024 * 1024;
    return { maxEntries: this.limits.maxEntries, maxBytes: Math.min(this.limits.maxBytes, quota) };
  }

  /** Charges a layer that is already on disk (a cache hit). */
  charge(entries: number, bytes: number): void {
    Atomics.add(this.counters, 0, BigInt(entries));
    Atomics.add(this.counters, 1, BigInt(bytes));
    this.check();
  }

  /** Throws the IMAGE_TOO_LARGE LayerError naming the cap passed, if one is. */
  check(): void {
    const entries = Number(Atomics.load(this.counters, 0));
    const bytes = Number(Atomics.load(this.counters, 1));
    const overQuota = this.diskQuotaMb === undefined ? null : imageOverQuota(bytes, this.diskQuotaMb, `image ${this.image} unpacks to more than`);
    if (overQuota) throw new LayerError("IMAGE_TOO_LARGE", overQuota);
    if (entries > this.limits.maxEntries)
      throw new LayerError("IMAGE_TOO_LARGE", `image ${this.image} holds more than ${this.limits.maxEntries} entries over its layers`);
    if (bytes > this.limits.maxBytes)
      throw new LayerError("IMAGE_TOO_LARGE", `image ${this.image} holds more than ${this.limits.maxBytes} uncompressed bytes over its layers`);
  }
}
