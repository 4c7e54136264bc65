/**
 * @module One pass over a layer blob: count and hash the compressed bytes,
 * decompress (gzip, zstd or none, chosen by magic bytes, media type as the
 * tie-breaker), count and hash the uncompressed tar (the diff_id) under a
 * size cap, and extract it — never holding a whole layer in memory. The
 * digests are checked at the end; the caller throws the directory away on
 * any error (the layer cache only renames verified directories into place).
 */
import { createHash, type Hash } from "node:crypto";
import { PassThrough, Transform, type Readable, type TransformCallback } from "node:stream";
import { constants as zlib, createGunzip, createZstdDecompress } from "node:zlib";
import { extractLayer, type ExtractResult } from "./extract";
import type { SpaceCharge } from "./image-budget";
import { LayerError } from "./layer-error";

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
  /** What the whole image and the layer cache may still take (entries and uncompressed bytes), shared by the pull's layers. */
  image?: SpaceCharge;
  idShift?: number;
  /** Called with each chunk's length as compressed bytes arrive (pull progress). */
  onCompressedBytes?: (n: number) => void;
}

export interface UnpackResult extends ExtractResult {
  /** Uncompressed tar length. */
  uncompressedBytes: number;
}

export type Compression = "gzip" | "zstd" | "none";

/** zstd frames may ask for windows up to 2^31; 2^27 (128 MiB) is containerd's and zstd's CLI default cap. */
const ZSTD_WINDOW_LOG_MAX = 27;

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

/** Counts and hashes what flows through; refuses more than `cap` bytes, or what `charge` throws at, and waits while it waits. */
class Tap extends Transform {
  bytes = 0;
  private readonly hash: Hash;
  constructor(
    algorithm: string,
    private readonly cap: number,
    private readonly overCap: () => LayerError,
    private readonly charge: (n: number) => void | Promise<void> = () => undefined,
  ) {
    super();
    this.hash = createHash(algorithm);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.cap) return cb(this.overCap());
    let charged: void | Promise<void>;
    try {
      charged = this.charge(chunk.length);
    } catch (err) {
      return cb(err as Error);
    }
    if (charged) return void charged.then(() => this.pass(chunk, cb), cb);
    this.pass(chunk, cb);
  }
  private pass(chunk: Buffer, cb: TransformCallback): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
  digest(): string {
    return this.hash.digest("hex");
  }
}

function algorithmOf(digest: string): { algorithm: string; hex: string } {
  const [algorithm, hex] = digest.split(":") as [string, string];
  if (algorithm !== "sha256" && algorithm !== "sha512")
    throw new LayerError("DIGEST_MISMATCH", `unsupported digest algorithm in ${JSON.stringify(digest)}`);
  return { algorithm, hex };
}

/** Waits for the first bytes without consuming them for the rest of the pipeline. */
async function peek(stream: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  while (have < n) {
    const chunk = stream.read() as Buffer | null;
    if (chunk) {
      chunks.push(chunk);
      have += chunk.length;
      continue;
    }
    if (stream.readableEnded || stream.destroyed) break;
    await new Promise<void>((resolve) => {
      const done = () => {
        stream.off("readable", done);
        stream.off("end", done);
        stream.off("error", done);
        resolve();
      };
      stream.on("readable", done);
      stream.on("end", done);
      stream.on("error", done);
    });
    if (stream.errored) throw stream.errored;
  }
  const head = Buffer.concat(chunks);
  if (head.length) stream.unshift(head);
  return head;
}

/**
 * Streams `blob` (the compressed layer as the registry sends it) into `dir`
 * and verifies size, digest and diff_id. Rejects with a LayerError.
 */
export async function unpackLayer(blob: Readable, layer: LayerDescriptor, dir: string, limits: UnpackLimits): Promise<UnpackResult> {
  checkLayerMediaType(layer.media_type);
  const blobAlgo = algorithmOf(layer.digest);
  const diffAlgo = algorithmOf(layer.diff_id);
  const compressed = new Tap(blobAlgo.algorithm, layer.size, () =>
    new LayerError("SIZE_MISMATCH", `layer ${layer.digest} is longer than its descriptor's ${layer.size} bytes`));
  const uncompressed = new Tap(diffAlgo.algorithm, limits.maxUncompressedBytes, () =>
    new LayerError("LAYER_TOO_LARGE", `layer ${layer.digest} expands past the cap of ${limits.maxUncompressedBytes} bytes (decompression bomb?)`),
    limits.image ? (n) => limits.image!.takeBytes(n) : undefined);
  blob.on("error", (err) => compressed.destroy(err));
  if (limits.onCompressedBytes) blob.on("data", (chunk: Buffer) => limits.onCompressedBytes!(chunk.length));
  blob.pipe(compressed);
  const head = await peek(compressed, 4);
  const kind = detectCompression(head, layer.media_type);
  // 128 KiB output chunks instead of zlib's 16 KiB: a quarter of the per-chunk work downstream (measured: ~half the CPU on a 20 MB layer).
  const chunkSize = 128 * 1024;
  const decompress =
    kind === "gzip"
      ? createGunzip({ chunkSize })
      : kind === "zstd"
        ? createZstdDecompress({ chunkSize, params: { [zlib.ZSTD_d_windowLogMax]: ZSTD_WINDOW_LOG_MAX } })
        : new PassThrough();
  const forward = (from: NodeJS.EventEmitter, to: Transform) => from.on("error", (err: Error) => to.destroy(err));
  forward(compressed, decompress);
  forward(decompress, uncompressed);
  compressed.pipe(decompress).pipe(uncompressed);

  let result: ExtractResult;
  try {
    result = await extractLayer(uncompressed, dir, limits);
    // Read any trailing data (zero blocks after the end-of-archive): the diff_id covers them.
    for await (const _ of uncompressed);
  } catch (err) {
    blob.destroy();
    throw toLayerError(err, layer, kind);
  }
  if (compressed.bytes !== layer.size)
    throw new LayerError("SIZE_MISMATCH", `layer ${layer.digest} is ${compressed.bytes} bytes, its descriptor says ${layer.size}`);
  const digest = compressed.digest();
  if (digest !== blobAlgo.hex)
    throw new LayerError("DIGEST_MISMATCH", `layer ${layer.digest} has digest ${blobAlgo.algorithm}:${digest}`);
  const diffId = uncompressed.digest();
  if (diffId !== diffAlgo.hex)
    throw new LayerError("DIFF_ID_MISMATCH", `layer ${layer.digest} uncompresses to ${diffAlgo.algorithm}:${diffId}, not its diff_id ${layer.diff_id}`);
  return { ...result, uncompressedBytes: uncompressed.bytes };
}

function toLayerError(err: unknown, layer: LayerDescriptor, kind: Compression): Error {
  if (err instanceof LayerError) return err;
  if (err instanceof Error && "step" in err) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new LayerError("CORRUPT_LAYER", `layer ${layer.digest} (${kind}) is corrupt or truncated: ${msg}`, { cause: err });
}
