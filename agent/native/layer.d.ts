/**
 * The layer half of the native addon (src/layer_unpack.cc, src/layer_tar.cc):
 * one pass over a layer blob on a libuv worker thread — hash the compressed
 * bytes, decompress, hash the tar, extract it confined below `dir`. Calls on
 * one handle run one at a time, in order. A refused layer rejects with an
 * Error carrying `layerCode` (a LayerErrorCode); a failed system call with a
 * NativeError (./native).
 */
export interface LayerUnpackOptions {
  /** The layer's digest, named in messages. */
  name: string;
  compression: "gzip" | "zstd" | "none";
  blobAlgorithm: "sha256" | "sha512";
  diffAlgorithm: "sha256" | "sha512";
  /** More compressed bytes than this refuse the blob (SIZE_MISMATCH). */
  maxCompressedBytes: number;
  /** More uncompressed bytes than this refuse the layer (LAYER_TOO_LARGE). */
  maxUncompressedBytes: number;
  maxFileBytes: number;
  maxEntries: number;
  idShift: number;
  /** What the layer cache charges per entry on top of the tar's bytes (a block). */
  entryDiskBytes: number;
  /** The image budget: [entries, bytes] on a SharedArrayBuffer, charged atomically with these caps. */
  imageCounters?: BigInt64Array;
  imageMaxEntries?: number;
  imageMaxBytes?: number;
}

export interface LayerUnpackResult {
  compressedBytes: number;
  /** Hex digest of the blob. */
  blobDigest: string;
  uncompressedBytes: number;
  /** Hex digest of the uncompressed tar (the diff_id). */
  diffDigest: string;
  entries: number;
  /** Bytes of regular file content written. */
  bytes: number;
  dropped: Array<{ path: string; reason: "device" | "overlay-xattr" | "aufs" | "xattr-refused" }>;
  /** Where the worker thread's time went, in ms: both digests, decompression, parsing and writing the tar (with its system calls). */
  workerMs: { hash: number; decompress: number; extract: number };
}

export type LayerUnpackHandle = { readonly __layerUnpack: unique symbol };

export interface NativeLayer {
  layerUnpackOpen(dir: string, options: LayerUnpackOptions): LayerUnpackHandle;
  /**
   * The next chunks of the blob, with `grant` more bytes of the layer cache's
   * room (each tar byte and each entry's block take from it). Resolves to 0
   * once all is extracted, else to what must be granted before it can go on:
   * it keeps the rest, and a call with no chunks resumes. The caller must not
   * change the chunks until the promise settles.
   */
  layerUnpackWrite(handle: LayerUnpackHandle, chunks: Uint8Array[], grant: number): Promise<number>;
  /** The blob has ended: refuses a cut stream, sets directory metadata, returns the counts and digests. */
  layerUnpackFinish(handle: LayerUnpackHandle): Promise<LayerUnpackResult>;
  /** Closes the layer root and any open file (a call still running keeps them until it ends). */
  layerUnpackClose(handle: LayerUnpackHandle): void;
}
