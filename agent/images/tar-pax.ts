/**
 * @module Makes tar-stream keep binary xattr values.
 *
 * tar-stream 3.2 decodes every PAX record value as UTF-8, which turns bytes
 * ≥ 0x80 into U+FFFD: a `SCHILY.xattr.security.capability` value (a binary
 * vfs_cap_data struct, e.g. cap_setuid = 0x80) would be corrupted. Its
 * extractor calls `headers.decodePax` through the module object, so replacing
 * that one function fixes it: `SCHILY.xattr.*` values come back as latin1
 * strings (one char per byte, lossless; read them with
 * `Buffer.from(v, "latin1")`), every other key as UTF-8 as before.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
// The package's "exports" hide headers.js; the file path reaches the same module instance extract.js uses.
const headers = require(join(dirname(require.resolve("tar-stream")), "headers.js")) as {
  decodePax: (buf: Buffer) => Record<string, string>;
};

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

headers.decodePax = decodePaxRecords;
