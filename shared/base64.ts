/**
 * @module Base64 ⇄ bytes with only `atob`/`btoa`, which the Worker and Node
 * both have (no Buffer in shared/).
 */

/** Decodes standard base64; throws a DOMException on characters outside the alphabet. */
export function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}
