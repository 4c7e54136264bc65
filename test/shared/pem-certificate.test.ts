/**
 * PEM certificate validation with real certificates from openssl (RSA, EC, a
 * CA and a leaf with extensions), and DER that only looks like one.
 */
import { X509Certificate } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePemCertificate, x509StructureProblem } from "../../shared/registry-access/pem-certificate";
import { makeTestCa, type TestCa } from "../support/tls";

const run = promisify(execFile);
let dir: string;
let ca: TestCa;
let leafPem: string;
let rsaPem: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-pem-"));
  ca = await makeTestCa(dir);
  leafPem = await readFile(ca.serverCertPath, "utf8");
  await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "rsa.key"), "-out", join(dir, "rsa.crt"), "-days", "1", "-subj", "/CN=rsa"]);
  rsaPem = await readFile(join(dir, "rsa.crt"), "utf8");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const derOf = (pem: string) => new Uint8Array(Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64"));
const pemOf = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString("base64")}\n-----END CERTIFICATE-----`;

describe("parsePemCertificate", () => {
  it("accepts real certificates and re-encodes them canonically", () => {
    for (const pem of [ca.caPem, leafPem, rsaPem]) {
      const r = parsePemCertificate(pem);
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      expect(r.pem).toBe(pem.trim());
      expect(new X509Certificate(r.pem).raw.equals(Buffer.from(r.der))).toBe(true);
    }
  });

  it("accepts CRLF line ends and unwrapped base64, re-wrapping to 64 columns", () => {
    const oneLine = pemOf(derOf(rsaPem)).replace(/\n/g, "\r\n");
    const r = parsePemCertificate(oneLine);
    expect(r.ok && r.pem).toBe(rsaPem.trim());
  });

  const C = (body: string) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----`;
  it.each([
    ["empty text", "", "is not a PEM block"],
    ["mismatched END label", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----", "is not a PEM block"],
    ["a CSR", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----", "'CERTIFICATE REQUEST' block"],
    ["an empty body", C(""), "not valid base64"],
    ["unpadded base64", C("AAA"), "not valid base64"],
    ["5000 BEGIN lines and no END", "-----BEGIN CERTIFICATE-----\n".repeat(5000), "is not a PEM block"],
    ["an END before the BEGIN", `-----END CERTIFICATE-----\n${C("AAAA")}`, "is not a PEM block"],
    ["two blocks", `${C("AAAA")}\n${C("AAAA")}`, "holds 2 PEM blocks"],
  ])("refuses %s", (_, text, error) => {
    const r = parsePemCertificate(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(error);
  });

  it("never echoes a private key it refuses", async () => {
    const key = await readFile(join(dir, "rsa.key"), "utf8");
    const r = parsePemCertificate(key);
    expect(r).toEqual({ ok: false, error: "is a PEM 'PRIVATE KEY' block, not a CERTIFICATE" });
  });
});

describe("x509StructureProblem", () => {
  it("finds no problem in real certificates", () => {
    for (const pem of [ca.caPem, leafPem, rsaPem]) expect(x509StructureProblem(derOf(pem))).toBeNull();
  });

  it("refuses DER that is not a certificate", async () => {
    const keyDer = derOf(await readFile(join(dir, "rsa.key"), "utf8"));
    expect(x509StructureProblem(keyDer)).toMatch(/tbsCertificate|certificate/);
    expect(x509StructureProblem(new Uint8Array([0x30, 0x80, 0, 0]))).toContain("indefinite length");
    expect(x509StructureProblem(new Uint8Array([0x30, 0x81, 0x05, 1, 2, 3, 4, 5]))).toContain("non-minimal length");
    expect(x509StructureProblem(new Uint8Array([0x02, 0x01, 0x01]))).toContain("certificate has tag 0x2");
    expect(x509StructureProblem(new Uint8Array([0x30, 0x00]))).toContain("tbsCertificate is missing");
  });

  it("refuses a real certificate cut short, padded, or with a field's tag changed", () => {
    const der = derOf(leafPem);
    expect(x509StructureProblem(der.slice(0, -1))).toContain("runs past its container");
    expect(x509StructureProblem(new Uint8Array([...der, 0]))).toContain("1 bytes after the certificate");
    // The signature BIT STRING is the last TLV; turn it into an OCTET STRING.
    const sigAt = lastTlvOffset(der);
    const changed = der.slice();
    changed[sigAt] = 0x04;
    expect(x509StructureProblem(changed)).toContain("signatureValue has tag 0x4");
  });
});

/** Offset of the certificate's last child (the signature), walking the outer SEQUENCE. */
function lastTlvOffset(der: Uint8Array): number {
  const header = (at: number) => (der[at + 1]! < 0x80 ? 2 : 2 + (der[at + 1]! & 0x7f));
  const length = (at: number) => {
    const b = der[at + 1]!;
    if (b < 0x80) return b;
    let n = 0;
    for (let i = 0; i < (b & 0x7f); i++) n = n * 256 + der[at + 2 + i]!;
    return n;
  };
  let at = header(0);
  let last = at;
  while (at < der.length) {
    last = at;
    at += header(at) + length(at);
  }
  return last;
}
