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

/**
 * What extraction charges as it writes, entry by entry and chunk by chunk:
 * may throw (a cap) or make it wait (the layer cache making room).
 */
export interface SpaceCharge {
  takeEntry(): void | Promise<void>;
  takeBytes(n: number): void | Promise<void>;
}

export interface ImageLimits {
  maxEntries: number;
  maxBytes: number;
}

export class ImageBudget implements SpaceCharge {
  private entries = 0;
  private bytes = 0;

  constructor(
    private readonly limits: ImageLimits,
    private readonly image: string,
    /** The instance's disk quota: the image counts against it (Garden's DiskLimitScopeTotal). */
    private readonly diskQuotaMb?: number,
  ) {}

  /** Charges a layer that is already on disk (a cache hit). */
  charge(entries: number, bytes: number): void {
    this.entries += entries;
    this.bytes += bytes;
    this.check();
  }

  takeEntry(): void {
    this.entries++;
    this.check();
  }

  takeBytes(n: number): void {
    this.bytes += n;
    this.check();
  }

  private check(): void {
    const overQuota = this.diskQuotaMb === undefined ? null : imageOverQuota(this.bytes, this.diskQuotaMb, `image ${this.image} unpacks to more than`);
    if (overQuota) throw new LayerError("IMAGE_TOO_LARGE", overQuota);
    if (this.entries > this.limits.maxEntries)
      throw new LayerError("IMAGE_TOO_LARGE", `image ${this.image} holds more than ${this.limits.maxEntries} entries over its layers`);
    if (this.bytes > this.limits.maxBytes)
      throw new LayerError("IMAGE_TOO_LARGE", `image ${this.image} holds more than ${this.limits.maxBytes} uncompressed bytes over its layers`);
  }
}
