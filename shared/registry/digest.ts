/** @module sha256 digests with Web Crypto, computed over the raw bytes (never re-serialized JSON). */
import { RegistryError } from "./errors";

export async function sha256Digest(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let hex = "";
  for (const b of hash) hex += b.toString(16).padStart(2, "0");
  return `sha256:${hex}`;
}

/** Throws digest_mismatch unless `bytes` hash to `expected`; `what` names the object for the message. */
export async function verifyDigest(bytes: Uint8Array<ArrayBuffer>, expected: string, what: string): Promise<void> {
  if (!expected.startsWith("sha256:")) {
    throw new RegistryError("unsupported_media_type", `${what} uses digest ${expected}; only sha256 is supported.`);
  }
  const actual = await sha256Digest(bytes);
  if (actual !== expected) {
    throw new RegistryError("digest_mismatch", `${what} does not match its digest: expected ${expected}, the registry sent content hashing to ${actual}.`);
  }
}
