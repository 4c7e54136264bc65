/**
 * @module Secrets at rest (registry passwords): AES-256-GCM through Web Crypto.
 * The key is the Worker secret ENCRYPTION_KEY (32 bytes, base64). Each value gets
 * a random 12-byte IV, and the AAD binds it to its owner (a package guid), so a
 * ciphertext copied onto another row fails to decrypt instead of leaking there.
 * Stored form: `v1:<keyId>:<base64(iv ‖ ciphertext+tag)>`; keyId (first 8 hex of
 * SHA-256 of the key) says which key sealed it, so keys can be rotated later.
 *
 * @example
 * const stored = await sealSecret(env.ENCRYPTION_KEY, "hunter2", packageAad(pkg.guid));
 * const plain = await openSecret(env.ENCRYPTION_KEY, stored, packageAad(pkg.guid));
 */

import { base64ToBytes, bytesToBase64 } from "../../shared/base64";

const VERSION = "v1";
const IV_BYTES = 12;

export class SecretError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SecretError";
  }
}

/** The AAD for a package's registry password. */
export const packageAad = (packageGuid: string): string => `package:${packageGuid}`;

interface Key {
  id: string;
  key: CryptoKey;
}

async function importKey(keyB64: string): Promise<Key> {
  let raw: Uint8Array;
  try {
    raw = base64ToBytes(keyB64.trim());
  } catch (e) {
    throw new SecretError("ENCRYPTION_KEY is not valid base64", { cause: e });
  }
  if (raw.byteLength !== 32) throw new SecretError(`ENCRYPTION_KEY must be 32 bytes, got ${raw.byteLength}`);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  const id = [...digest.slice(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const key = await crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
  return { id, key };
}

/** Encrypts `plaintext` bound to `aad`; returns the stored form. */
export async function sealSecret(keyB64: string, plaintext: string, aad: string): Promise<string> {
  const { id, key } = await importKey(keyB64);
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: new TextEncoder().encode(aad) },
      key,
      new TextEncoder().encode(plaintext),
    ),
  );
  const packed = new Uint8Array(IV_BYTES + ct.byteLength);
  packed.set(iv, 0);
  packed.set(ct, IV_BYTES);
  return `${VERSION}:${id}:${bytesToBase64(packed)}`;
}

/** Decrypts a stored value; throws SecretError for another key, a wrong AAD or tampering. */
export async function openSecret(keyB64: string, stored: string, aad: string): Promise<string> {
  const [version, keyId, body, ...rest] = stored.split(":");
  if (version !== VERSION || !keyId || !body || rest.length > 0) throw new SecretError("unrecognised secret format");
  const { id, key } = await importKey(keyB64);
  if (keyId !== id) throw new SecretError(`secret was sealed with key ${keyId}, not the configured key ${id}`);
  let packed: Uint8Array;
  try {
    packed = base64ToBytes(body);
  } catch (e) {
    throw new SecretError("secret body is not valid base64", { cause: e });
  }
  if (packed.byteLength <= IV_BYTES) throw new SecretError("secret body is too short");
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: packed.slice(0, IV_BYTES), additionalData: new TextEncoder().encode(aad) },
      key,
      packed.slice(IV_BYTES),
    );
    return new TextDecoder().decode(plain);
  } catch (e) {
    throw new SecretError("secret failed authentication (wrong key, wrong owner or tampered)", { cause: e });
  }
}
