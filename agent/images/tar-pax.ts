/**
 * @module Fixes two things in tar-stream's header decoding, which its
 * extractor calls through the module object, so replacing the functions
 * there reaches it.
 *
 * Long headers are capped: tar-stream buffers a PAX or GNU long-name header
 * whole (up to its own 4 MiB), so a stream of them is memory the image
 * chooses. Past MAX_LONG_HEADER_BYTES (1 MiB, Go's archive/tar limit, which
 * containerd and Docker use) the layer fails before the header is read.
 *
 * Binary xattr values are kept: tar-stream 3.2 decodes every PAX record value as UTF-8, which turns bytes
 * ≥ 0x80 into U+FFFD: a `SCHILY.xattr.security.capability` value (a binary
 * vfs_cap_data struct, e.g. cap_setuid = 0x80) would be corrupted. Its
 * extractor calls `headers.decodePax` through the module object, so replacing
 * that one function fixes it: `SCHILY.xattr.*` values come back as latin1
 * strings (one char per byte, lossless; read them with
 * `Buffer.from(v, "latin1")`), every other key as UTF-8 as before.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { LayerError } from "./layer-error";

const require = createRequire(import.meta.url);
// The package's "exports" hide headers.js; the file path reaches the same module instance extract.js uses.
const headers = require(join(dirname(require.resolve("tar-stream")), "headers.js")) as {
  decodePax: (buf: Buffer) => Record<string, string>;
  decode: (buf: Buffer, ...rest: unknown[]) => { type: string; size: number; name: string } | null;
};

export const MAX_LONG_HEADER_BYTES = 1 << 20;
const LONG_HEADERS = new Set(["pax-header", "pax-global-header", "gnu-long-path", "gnu-long-link-path"]);

export const XATTR_PREFIX = "SCHILY.xattr.";

/** Decodes PAX records ("LEN KEY=VALUE\n"), keeping xattr values byte for byte. */
export function decodePaxRecords(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = buf;
  while (rest.length) {
    const space = rest.indexOf(0x20);
    if (space <= 0) break;
    const len = Number.parseInt(rest.subarray(0, space).toString("ascii"), 10);
    if (!(len > space + 1) || len > rest.length) break;
    const record = rest.subarray(space + 1, len - 1);
    const eq = record.indexOf(0x3d);
    if (eq === -1) break;
    const key = record.subarray(0, eq).toString("utf8");
    out[key] = record.subarray(eq + 1).toString(key.startsWith(XATTR_PREFIX) ? "latin1" : "utf8");
    rest = rest.subarray(len);
  }
  return out;
}

/** Refuses a long header over the cap from its 512-byte block, before its body is buffered. */
const decodeHeader = headers.decode;
headers.decode = (buf, ...rest) => {
  const h = decodeHeader(buf, ...rest);
  if (h && LONG_HEADERS.has(h.type) && h.size > MAX_LONG_HEADER_BYTES)
    throw new LayerError("HEADER_TOO_LARGE", `a ${h.type} entry of ${h.size} bytes is over the cap of ${MAX_LONG_HEADER_BYTES} for long names and PAX records`);
  return h;
};
headers.decodePax = decodePaxRecords;
