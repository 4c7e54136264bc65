/**
 * @module Signed JSON Web Tokens (HS256, Web Crypto) for the UAA-compatible
 * login. The signing key is the Worker secret TOKEN_SIGNING_KEY; keys named in
 * TOKEN_VERIFICATION_KEYS (comma-separated, the previous ones) still verify, so
 * a key can be rotated without signing everyone out. Each token's `kid` header
 * is the first 8 hex digits of the SHA-256 of the key that signed it.
 *
 * @example
 * const keys = await signingKeys(env);
 * const jwt = await signJwt(keys, { sub: "u1", exp: 1700000000 });
 * const claims = await verifyJwt(keys, jwt); // null when forged or unknown kid
 */
import { base64ToBytes, bytesToBase64 } from "../../shared/base64";

export interface SigningKeys {
  current: { id: string; key: CryptoKey };
  /** Every key that verifies, by id: the current one and the previous ones. */
  verifying: Map<string, CryptoKey>;
}

const utf8 = new TextEncoder();

export const base64url = (bytes: Uint8Array): string =>
  bytesToBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

function fromBase64url(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("not base64url");
  const b64 = s.replaceAll("-", "+").replaceAll("_", "/");
  return base64ToBytes(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
}

async function importKey(secret: string): Promise<{ id: string; key: CryptoKey }> {
  const raw = utf8.encode(secret.trim());
  if (raw.byteLength < 32) throw new Error("a token signing key must be at least 32 bytes");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  const id = [...digest.slice(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  return { id, key };
}

/** The keys from the Worker's secrets; throws when TOKEN_SIGNING_KEY is missing or short. */
export async function signingKeys(env: { TOKEN_SIGNING_KEY?: string; TOKEN_VERIFICATION_KEYS?: string }): Promise<SigningKeys> {
  if (!env.TOKEN_SIGNING_KEY) throw new Error("TOKEN_SIGNING_KEY is not set");
  const current = await importKey(env.TOKEN_SIGNING_KEY);
  const verifying = new Map([[current.id, current.key]]);
  for (const old of (env.TOKEN_VERIFICATION_KEYS ?? "").split(",").filter((s) => s.trim())) {
    const k = await importKey(old);
    verifying.set(k.id, k.key);
  }
  return { current, verifying };
}

export async function signJwt(keys: SigningKeys, claims: Record<string, unknown>): Promise<string> {
  const header = base64url(utf8.encode(JSON.stringify({ alg: "HS256", typ: "JWT", kid: keys.current.id })));
  const payload = base64url(utf8.encode(JSON.stringify(claims)));
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", keys.current.key, utf8.encode(`${header}.${payload}`)));
  return `${header}.${payload}.${base64url(sig)}`;
}

/** Whether a bearer credential has the shape of a JWT (three base64url parts) rather than an opaque token. */
export const looksLikeJwt = (token: string): boolean => /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);

/**
 * The claims of a token signed by one of the keys, or null: bad shape, another
 * algorithm (no `none`, no confusion), an unknown `kid` or a wrong signature.
 * Expiry is the caller's decision (it holds the clock).
 */
export async function verifyJwt(keys: SigningKeys, token: string): Promise<Record<string, unknown> | null> {
  if (!looksLikeJwt(token)) return null;
  const [h, p, s] = token.split(".") as [string, string, string];
  try {
    const header = JSON.parse(new TextDecoder().decode(fromBase64url(h))) as { alg?: unknown; kid?: unknown };
    if (header.alg !== "HS256" || typeof header.kid !== "string") return null;
    const key = keys.verifying.get(header.kid);
    if (!key) return null;
    // HMAC verify compares in constant time.
    if (!(await crypto.subtle.verify("HMAC", key, fromBase64url(s), utf8.encode(`${h}.${p}`)))) return null;
    const claims: unknown = JSON.parse(new TextDecoder().decode(fromBase64url(p)));
    return claims !== null && typeof claims === "object" && !Array.isArray(claims) ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
