/**
 * @module The one error type of the image store: a code the agent can branch
 * on (never the message text) and a message that names the layer and entry.
 */
export type LayerErrorCode =
  | "PATH_ESCAPE" // an entry or hard link name leaves the layer root (`../x`)
  | "BAD_WHITEOUT" // `.wh..`, `.wh.` or a whiteout naming something outside its directory
  | "HARDLINK_TARGET" // a hard link to something this layer does not hold (or a directory)
  | "UNSUPPORTED_ENTRY" // a tar entry type we do not write (sparse, unknown)
  | "FILE_TOO_LARGE" // one file bigger than the disk limit
  | "LAYER_TOO_LARGE" // more uncompressed bytes than the cap (decompression bomb)
  | "HEADER_TOO_LARGE" // a PAX or GNU long-name header over MAX_LONG_HEADER_BYTES
  | "NAME_TOO_LONG" // an entry name over PATH_MAX
  | "TOO_MANY_ENTRIES" // more entries (or bytes of names to keep) than one layer may hold
  | "IMAGE_TOO_LARGE" // the image's layers together hold more entries or file bytes than allowed
  | "CACHE_FULL" // the layer cache's budget has no room left that eviction could free
  | "CORRUPT_LAYER" // truncated or invalid compressed data or tar
  | "SIZE_MISMATCH" // the blob's length differs from its descriptor
  | "DIGEST_MISMATCH" // sha256 of the blob differs from its descriptor
  | "DIFF_ID_MISMATCH" // sha256 of the uncompressed tar differs from the config's diff_id
  | "UNSUPPORTED_MEDIA_TYPE"
  | "FETCH_FAILED" // the registry answered with an error, or its answer broke off
  | "ACCESS_DENIED"; // a cached layer whose blob the puller's registry would not serve it

export class LayerError extends Error {
  override readonly name = "LayerError";
  constructor(
    readonly code: LayerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
