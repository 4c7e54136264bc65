import { describe, expect, it } from "vitest";
import { openSecret, packageAad, SecretError, sealSecret } from "../../worker/crypto/secrets";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).map((_, i) => i)));
const OTHER_KEY = btoa(String.fromCharCode(...new Uint8Array(32).map((_, i) => 255 - i)));

describe("secrets at rest", () => {
  it("round-trips with a fresh IV each time", async () => {
    const a = await sealSecret(KEY, "pässword", packageAad("p1"));
    const b = await sealSecret(KEY, "pässword", packageAad("p1"));
    expect(a).not.toBe(b);
    expect(await openSecret(KEY, a, packageAad("p1"))).toBe("pässword");
  });

  it("refuses another owner, another key, tampering and garbage", async () => {
    const sealed = await sealSecret(KEY, "pw", packageAad("p1"));
    await expect(openSecret(KEY, sealed, packageAad("p2"))).rejects.toBeInstanceOf(SecretError);
    await expect(openSecret(OTHER_KEY, sealed, packageAad("p1"))).rejects.toThrow(/sealed with key/);
    const [v, id, body] = sealed.split(":");
    const bytes = Uint8Array.from(atob(body!), (ch) => ch.charCodeAt(0));
    bytes[bytes.length - 1]! ^= 1;
    const tampered = `${v}:${id}:${btoa(String.fromCharCode(...bytes))}`;
    await expect(openSecret(KEY, tampered, packageAad("p1"))).rejects.toThrow(/failed authentication/);
    await expect(openSecret(KEY, "v2:abc:def", packageAad("p1"))).rejects.toThrow(/format/);
    await expect(openSecret(KEY, `v1:${id}:!!!`, packageAad("p1"))).rejects.toThrow(/base64/);
    await expect(openSecret(KEY, `v1:${id}:AAAA`, packageAad("p1"))).rejects.toThrow(/too short/);
  });

  it("refuses a key that is not 32 bytes of base64", async () => {
    await expect(sealSecret(btoa("short"), "pw", "x")).rejects.toThrow(/32 bytes/);
    await expect(sealSecret("%%%", "pw", "x")).rejects.toThrow(/base64/);
  });
});
