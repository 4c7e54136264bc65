/**
 * @module One pass over a layer blob in the native addon, off the main
 * thread (agent/native/layer.d.ts): count and hash the compressed bytes,
 * decompress (gzip, zstd or none, chosen by magic bytes, media type as the
 * tie-breaker), count and hash the uncompressed tar (the diff_id) under its
 * caps, and extract it — never holding a whole layer in memory. Chunks are
 * handed over in batches as they arrive, so reading the network overlaps
 * the work on what came before. The digests are checked at the end; the
 * caller throws the directory away on any error (the layer cache only renames
 * verified directories into place).
 *
 * What the extractor writes: the form overlayfs reads as a lower layer
 * (whiteouts become char 0/0 devices, opaque markers the
 * `trusted.overlay.opaque` xattr), every path resolved with openat2
 * RESOLVE_IN_ROOT so a symlink in the tree can never carry a later entry
 * outside the directory, names that try to leave it refused. Ids are written
 * as the tar says (idmapped mounts shift them at mount time) unless `idShift`
 * asks for the chown fallback.
 */
import { native } from "../native/index";
import type { LayerUnpackHandle, LayerUnpackResult } from "../native/layer";
import { ENTRY_DISK_BYTES, type LayerCharge } from "./cache-budget";
import type { ImageBudget } from "./image-budget";
import { LayerError, type LayerErrorCode } from "./layer-error";

export interface LayerDescriptor {
  digest: string;
  size: number;
  media_type: string;
  diff_id: string;
}

export interface UnpackLimits {
  /** Largest single file (the disk limit). */
  maxFileBytes: number;
  /** Cap on the uncompressed tar: a gzip bomb stops here. */
  maxUncompressedBytes: number;
  /** Entries one layer may hold. */
  maxEntries: number;
  /** What the whole image may still take (entries and uncompressed bytes), shared by the pull's layers. */
  image?: ImageBudget;
  /** The layer cache's room this layer takes as it is written (tar bytes, a block per entry); none: unbounded. */
  cache?: Pick<LayerCharge, "take" | "room">;
  idShift?: number;
  /** Called with each chunk's length as compressed bytes arrive (pull progress). */
  onCompressedBytes?: (n: number) => void;
}

/** An entry deliberately not written, and why (see DROP_REASONS). */
export interface DroppedEntry {
  path: string;
  reason: keyof typeof DROP_REASONS;
}

/** Every kind of entry or attribute the extractor leaves out, in one place. */
export const DROP_REASONS = {
  device:
    "character and block devices are not created: containers run in a user namespace where device nodes " +
    "from an image could not be opened anyway, and the runtime bind-mounts the few /dev nodes a container gets",
  "overlay-xattr":
    "trusted.overlay.* xattrs from a layer are dropped: they would let an image forge overlayfs metadata " +
    "(redirects, opaque flags, origins) instead of using OCI whiteouts",
  aufs: "AUFS bookkeeping entries (.wh..wh.plnk, .wh..wh.aufs) are not part of the filesystem",
  "xattr-refused": "the host filesystem refused this xattr (ENOTSUP/EPERM); tolerated like containerd does",
} as const;

export interface UnpackResult {
  entries: number;
  /** Bytes of regular file content written. */
  bytes: number;
  dropped: DroppedEntry[];
  /** Uncompressed tar length. */
  uncompressedBytes: number;
  /** Where the worker thread's time went (ms): digests, decompression, the tar and its writes. */
  workerMs: LayerUnpackResult["workerMs"];
}

export type Compression = "gzip" | "zstd" | "none";

/**
 * Magic bytes first (gzip 1f 8b 08, zstd 28 b5 2f fd or a skippable frame
 * 5? 2a 4d 18), as containerd does; the media type only when they say nothing.
 */
export function detectCompression(head: Buffer, mediaType: string): Compression {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return "gzip";
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  if (head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) return "zstd";
  if (/\+zstd$/.test(mediaType)) return "zstd";
  if (/(\+|\.)gzip$/.test(mediaType)) return "gzip";
  return "none";
}

const LAYER_MEDIA_TYPE = /^application\/vnd\.(oci\.image\.layer\.(nondistributable\.)?v1\.tar(\+gzip|\+zstd)?|docker\.image\.rootfs\.(foreign\.)?diff\.tar(\.gzip)?)$/;

export function checkLayerMediaType(mediaType: string): void {
  if (!LAYER_MEDIA_TYPE.test(mediaType))
    throw new LayerError("UNSUPPORTED_MEDIA_TYPE", `layer media type ${JSON.stringify(mediaType)} is not a tar layer`);
}

function algorithmOf(digest: string): { algorithm: "sha256" | "sha512"; hex: string } {
  const [algorithm, hex] = digest.split(":") as [string, string];
  if (algorithm !== "sha256" && algorithm !== "sha512")
    throw new LayerError("DIGEST_MISMATCH", `unsupported digest algorithm in ${JSON.stringify(digest)}`);
  return { algorithm, hex };
}

/**
 * Compressed bytes gathered before a call into the addon (each call is a hop
 * to a worker thread: per 64 KiB network chunk, the hops cost more than the
 * work), and the most queued while a call runs before reading the blob waits.
 */
const BATCH_BYTES = 1 << 20;
const HIGH_WATER_BYTES = 8 << 20;
/** Room asked of the layer cache at a time while it has it free; when it has not, only what the next step needs (so no layer is evicted for room that goes unused). */
const GRANT_BYTES = 8 << 20;

/**
 * Streams `blob` (the compressed layer as the registry sends it) into `dir`
 * and verifies size, digest and diff_id. Rejects with a LayerError (or a
 * native error naming the system call that failed).
 */
export async function unpackLayer(blob: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, layer: LayerDescriptor, dir: string, limits: UnpackLimits): Promise<UnpackResult> {
  checkLayerMediaType(layer.media_type);
  const blobAlgo = algorithmOf(layer.digest);
  const diffAlgo = algorithmOf(layer.diff_id);
  let handle: LayerUnpackHandle | undefined;
  let result: LayerUnpackResult;
  const feeder = new Feeder(limits.cache);
  try {
    let head: Uint8Array[] = [];
    for await (const chunk of blob) {
      limits.onCompressedBytes?.(chunk.length);
      if (!handle) {
        // The first bytes choose the decompressor.
        head.push(chunk);
        const seen = Buffer.concat(head);
        if (seen.length < 4) continue;
        handle = open(dir, layer, detectCompression(seen, layer.media_type), blobAlgo.algorithm, diffAlgo.algorithm, limits);
        feeder.start(handle);
        head.forEach((c) => feeder.push(c));
        head = [];
      } else feeder.push(chunk);
      await feeder.backpressure();
    }
    if (!handle) {
      handle = open(dir, layer, detectCompression(Buffer.concat(head), layer.media_type), blobAlgo.algorithm, diffAlgo.algorithm, limits);
      feeder.start(handle);
      head.forEach((c) => feeder.push(c));
    }
    await feeder.drain();
    result = await native.layerUnpackFinish(handle);
  } catch (err) {
    // Nothing may still write into dir once the caller removes it.
    await feeder.settled();
    throw toLayerError(err, limits.image);
  } finally {
    if (handle) native.layerUnpackClose(handle);
  }
  if (result.compressedBytes !== layer.size)
    throw new LayerError("SIZE_MISMATCH", `layer ${layer.digest} is ${result.compressedBytes} bytes, its descriptor says ${layer.size}`);
  if (result.blobDigest !== blobAlgo.hex)
    throw new LayerError("DIGEST_MISMATCH", `layer ${layer.digest} has digest ${blobAlgo.algorithm}:${result.blobDigest}`);
  if (result.diffDigest !== diffAlgo.hex)
    throw new LayerError("DIFF_ID_MISMATCH", `layer ${layer.digest} uncompresses to ${diffAlgo.algorithm}:${result.diffDigest}, not its diff_id ${layer.diff_id}`);
  const { entries, bytes, dropped, uncompressedBytes, workerMs } = result;
  return { entries, bytes, dropped, uncompressedBytes, workerMs };
}

function open(dir: string, layer: LayerDescriptor, compression: Compression, blobAlgorithm: "sha256" | "sha512", diffAlgorithm: "sha256" | "sha512", limits: UnpackLimits): LayerUnpackHandle {
  const image = limits.image;
  return native.layerUnpackOpen(dir, {
    name: layer.digest,
    compression,
    blobAlgorithm,
    diffAlgorithm,
    maxCompressedBytes: layer.size,
    maxUncompressedBytes: limits.maxUncompressedBytes,
    maxFileBytes: limits.maxFileBytes,
    maxEntries: limits.maxEntries,
    idShift: limits.idShift ?? 0,
    entryDiskBytes: ENTRY_DISK_BYTES,
    ...(image ? { imageCounters: image.counters, imageMaxEntries: image.caps.maxEntries, imageMaxBytes: image.caps.maxBytes } : {}),
  });
}

/**
 * Hands chunks to the addon in order, one call at a time, in batches of at
 * least BATCH_BYTES (the rest at the end): the next batch gathers while a
 * call runs, so the addon's worker thread and the network read overlap.
 */
class Feeder {
  constructor(private readonly cache: UnpackLimits["cache"]) {}

  private handle: LayerUnpackHandle | undefined;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private running: Promise<void> | undefined;
  private failure: { err: unknown } | undefined;

  start(handle: LayerUnpackHandle): void {
    this.handle = handle;
  }

  push(chunk: Uint8Array): void {
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.queued >= BATCH_BYTES) this.kick();
  }

  /** Waits while too much is queued; throws what the addon refused. */
  async backpressure(): Promise<void> {
    while (this.running && this.queued >= HIGH_WATER_BYTES) await this.running;
    if (this.failure) throw this.failure.err;
  }

  /** Waits for the call running, whatever its outcome. */
  async settled(): Promise<void> {
    this.failure ??= { err: new Error("stopped") };
    while (this.running) await this.running;
  }

  /** Waits until every chunk pushed is written. */
  async drain(): Promise<void> {
    for (;;) {
      while (this.running) await this.running;
      if (this.failure) throw this.failure.err;
      if (!this.queue.length) return;
      this.kick();
    }
  }

  /** One batch, with room granted as often as the extraction waits for it. */
  private async write(handle: LayerUnpackHandle, batch: Uint8Array[]): Promise<void> {
    let need = await native.layerUnpackWrite(handle, batch, 0);
    while (need > 0) need = await native.layerUnpackWrite(handle, [], await this.grant(need));
  }

  private async grant(need: number): Promise<number> {
    if (!this.cache) return Infinity;
    const n = Math.max(need, Math.min(GRANT_BYTES, this.cache.room()));
    await this.cache.take(n);
    return n;
  }

  private kick(): void {
    if (this.running || this.failure || !this.queue.length || !this.handle) return;
    const batch = this.queue;
    this.queue = [];
    this.queued = 0;
    this.running = this.write(this.handle, batch).then(
      () => {
        this.running = undefined;
        if (this.queued >= BATCH_BYTES) this.kick();
      },
      (err: unknown) => {
        this.failure = { err };
        this.running = undefined;
      },
    );
  }
}

/**
 * The addon's refusal (`layerCode`) as a LayerError; anything else as it is:
 * a LayerError or native error already says what failed, and an abort or a
 * bug is not the layer's fault, so it must not read as a corrupt layer.
 */
function toLayerError(err: unknown, image: ImageBudget | undefined): unknown {
  const code = err instanceof Error && !(err instanceof LayerError) && "layerCode" in err ? (err.layerCode as LayerErrorCode) : undefined;
  if (code === undefined) return err;
  // The budget's own words: which cap, and the disk quota when that is the one passed.
  if (code === "IMAGE_TOO_LARGE") image?.check();
  return new LayerError(code, (err as Error).message, { cause: err });
}
