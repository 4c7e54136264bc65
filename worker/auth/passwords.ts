/**
 * @module Passwords are stored only as PBKDF2-SHA256 hashes with a random salt,
 * computed with Web Crypto (Workers cap PBKDF2 at 100,000 iterations, which is
 * what new hashes use). Stored form: `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>`,
 * so the work factor can change later without breaking older hashes.
 */
import { base64ToBytes, bytesToBase64 } from "../../shared/base64";

const ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BITS = 256;

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const material = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, material, HASH_BITS));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  return `pbkdf2-sha256$${ITERATIONS}$${bytesToBase64(salt)}$${bytesToBase64(await derive(password, salt, ITERATIONS))}`;
}

/** A stored hash no password matches, used for unknown users so a miss costs the same time as a wrong password. */
export const UNMATCHABLE_HASH = `pbkdf2-sha256$${ITERATIONS}$AAAAAAAAAAAAAAAAAAAAAA==$`;

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, iter, saltB64, hashB64, ...rest] = stored.split("$");
  const iterations = Number(iter);
  if (scheme !== "pbkdf2-sha256" || !Number.isInteger(iterations) || iterations < 1 || iterations > ITERATIONS || rest.length > 0) return false;
  const got = await derive(password, base64ToBytes(saltB64 ?? ""), iterations);
  const want = hashB64 ? base64ToBytes(hashB64) : new Uint8Array(0);
  let diff = got.length ^ want.length;
  for (let i = 0; i < got.length; i++) diff |= got[i]! ^ (want[i] ?? 0);
  return diff === 0;
}
