/**
 * @module Trusted CA certificates as admins paste them: one PEM `CERTIFICATE`
 * block, whose base64 body must decode to DER with the outer shape of an X.509
 * certificate (RFC 5280 §4.1). The DER is walked tag by tag, so a block that
 * only looks right (random base64, a key, a CSR, a truncated copy) is refused
 * before any cell or TLS stack sees it. Signatures and dates are not judged here.
 */

import { base64ToBytes, bytesToBase64 } from "../base64";

export type PemCertificateResult = { ok: true; pem: string; der: Uint8Array } | { ok: false; error: string };

// Markers are found in one linear pass; a backreferencing block regex could
// backtrack quadratically on input full of BEGIN lines.
const MARKER = /-----(BEGIN|END) ([A-Z0-9 ]{1,64})-----/g;

interface Block {
  label: string;
  body: string;
}

/** Splits text into PEM blocks; null when markers do not pair up or non-blank text lies outside them. */
function pemBlocks(text: string): Block[] | null {
  const blocks: Block[] = [];
  let open: { label: string; bodyStart: number } | null = null;
  let last = 0;
  for (const m of text.matchAll(MARKER)) {
    const [marker, kind, label] = [m[0], m[1]!, m[2]!];
    if (kind === "BEGIN") {
      if (open || text.slice(last, m.index).trim() !== "") return null;
      open = { label, bodyStart: m.index + marker.length };
    } else {
      if (!open || open.label !== label) return null;
      blocks.push({ label, body: text.slice(open.bodyStart, m.index) });
      open = null;
      last = m.index + marker.length;
    }
  }
  return open || text.slice(last).trim() !== "" ? null : blocks;
}

/** Parses one PEM certificate and returns it re-encoded canonically (64-column base64, no trailing newline). */
export function parsePemCertificate(text: string): PemCertificateResult {
  const blocks = pemBlocks(text);
  if (!blocks || blocks.length === 0) return { ok: false, error: "is not a PEM block (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----, nothing around it)" };
  if (blocks.length > 1) return { ok: false, error: `holds ${blocks.length} PEM blocks; give one certificate per entry` };
  const { label, body } = blocks[0]!;
  // Never echo the body: it could be a private key pasted by mistake.
  if (label !== "CERTIFICATE") return { ok: false, error: `is a PEM '${label}' block, not a CERTIFICATE` };
  const der = decodeBase64(body.replace(/\s+/g, ""));
  if (!der) return { ok: false, error: "has a body that is not valid base64" };
  const problem = x509StructureProblem(der);
  if (problem) return { ok: false, error: `is not an X.509 certificate: ${problem}` };
  return { ok: true, pem: encodePem(der), der };
}

/** Strict: padded, alphabet only (atob alone would accept missing padding). */
function decodeBase64(b64: string): Uint8Array | null {
  if (b64.length === 0 || b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return null;
  return base64ToBytes(b64);
}

function encodePem(der: Uint8Array): string {
  const lines = bytesToBase64(der).match(/.{1,64}/g) ?? [];
  return ["-----BEGIN CERTIFICATE-----", ...lines, "-----END CERTIFICATE-----"].join("\n");
}

/** One DER TLV: `start`..`end` is the value. */
interface Tlv {
  tag: number;
  start: number;
  end: number;
}

const TAG = { INTEGER: 0x02, BIT_STRING: 0x03, OID: 0x06, UTC_TIME: 0x17, GENERALIZED_TIME: 0x18, SEQUENCE: 0x30, SET: 0x31 } as const;

class DerError extends Error {}

/** Reads the TLV at `offset`, which must end by `limit`. DER only: definite, minimal lengths. */
function readTlv(der: Uint8Array, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new DerError(`truncated at byte ${offset}`);
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at byte ${offset}`);
  const first = der[offset + 1]!;
  let pos = offset + 2;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError(`indefinite length at byte ${offset} (BER, not DER)`);
    if (n > 4) throw new DerError(`length of ${n} bytes at byte ${offset}`);
    if (pos + n > limit) throw new DerError(`truncated length at byte ${offset}`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[pos + i]!;
    if (der[pos] === 0 || length < 0x80) throw new DerError(`non-minimal length at byte ${offset}`);
    pos += n;
  }
  if (pos + length > limit) throw new DerError(`value at byte ${offset} runs past its container`);
  return { tag, start: pos, end: pos + length };
}

/** The TLVs that exactly fill a constructed value. */
function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.start; pos < parent.end; ) {
    const tlv = readTlv(der, pos, parent.end);
    out.push(tlv);
    pos = tlv.end;
  }
  return out;
}

function expect(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv) throw new DerError(`${what} is missing`);
  if (tlv.tag !== tag) throw new DerError(`${what} has tag 0x${tlv.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return tlv;
}

/**
 * Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
 * TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber INTEGER, signature AlgorithmIdentifier,
 *   issuer Name, validity SEQUENCE { notBefore Time, notAfter Time }, subject Name,
 *   subjectPublicKeyInfo SEQUENCE { algorithm, subjectPublicKey BIT STRING }, [1] [2] [3] OPTIONAL }
 * Returns what is wrong, or null.
 */
export function x509StructureProblem(der: Uint8Array): string | null {
  try {
    const cert = expect(readTlv(der, 0, der.length), TAG.SEQUENCE, "certificate");
    if (cert.end !== der.length) throw new DerError(`${der.length - cert.end} bytes after the certificate`);
    const [tbs, sigAlg, sig, ...extra] = children(der, cert);
    if (extra.length > 0) throw new DerError("certificate has more than 3 fields");
    checkTbs(der, expect(tbs, TAG.SEQUENCE, "tbsCertificate"));
    checkAlgorithm(der, expect(sigAlg, TAG.SEQUENCE, "signatureAlgorithm"), "signatureAlgorithm");
    checkBitString(der, expect(sig, TAG.BIT_STRING, "signatureValue"), "signatureValue");
    return null;
  } catch (e) {
    if (e instanceof DerError) return e.message;
    throw e;
  }
}

function checkTbs(der: Uint8Array, tbs: Tlv) {
  const fields = children(der, tbs);
  let i = 0;
  if (fields[0]?.tag === 0xa0) {
    const [version, ...rest] = children(der, fields[0]);
    const v = expect(version, TAG.INTEGER, "version");
    if (rest.length > 0 || v.end - v.start !== 1 || der[v.start]! > 2) throw new DerError("version is not v1, v2 or v3");
    i = 1;
  }
  const serial = expect(fields[i++], TAG.INTEGER, "serialNumber");
  if (serial.end === serial.start) throw new DerError("serialNumber is empty");
  checkAlgorithm(der, expect(fields[i++], TAG.SEQUENCE, "signature"), "signature");
  checkName(der, expect(fields[i++], TAG.SEQUENCE, "issuer"), "issuer");
  const validity = children(der, expect(fields[i++], TAG.SEQUENCE, "validity"));
  if (validity.length !== 2 || !validity.every((t) => t.tag === TAG.UTC_TIME || t.tag === TAG.GENERALIZED_TIME)) {
    throw new DerError("validity is not two times");
  }
  checkName(der, expect(fields[i++], TAG.SEQUENCE, "subject"), "subject");
  const [keyAlg, key, ...more] = children(der, expect(fields[i++], TAG.SEQUENCE, "subjectPublicKeyInfo"));
  if (more.length > 0) throw new DerError("subjectPublicKeyInfo has more than 2 fields");
  checkAlgorithm(der, expect(keyAlg, TAG.SEQUENCE, "subjectPublicKeyInfo.algorithm"), "subjectPublicKeyInfo.algorithm");
  checkBitString(der, expect(key, TAG.BIT_STRING, "subjectPublicKey"), "subjectPublicKey");
  // Optional issuerUniqueID [1], subjectUniqueID [2], extensions [3], in this order.
  let lastOptional = 0;
  for (const t of fields.slice(i)) {
    const n = t.tag === 0x81 || t.tag === 0xa1 ? 1 : t.tag === 0x82 || t.tag === 0xa2 ? 2 : t.tag === 0xa3 ? 3 : 0;
    if (n <= lastOptional) throw new DerError(`unexpected field with tag 0x${t.tag.toString(16)} in tbsCertificate`);
    if (n === 3) {
      const [list, ...rest] = children(der, t);
      if (rest.length > 0) throw new DerError("extensions [3] holds more than one SEQUENCE");
      for (const ext of children(der, expect(list, TAG.SEQUENCE, "extensions"))) expect(ext, TAG.SEQUENCE, "extension");
    }
    lastOptional = n;
  }
}

function checkAlgorithm(der: Uint8Array, alg: Tlv, what: string) {
  const [oid] = children(der, alg);
  const o = expect(oid, TAG.OID, `${what}.algorithm`);
  if (o.end === o.start) throw new DerError(`${what}.algorithm is empty`);
}

function checkName(der: Uint8Array, name: Tlv, what: string) {
  for (const rdn of children(der, name)) expect(rdn, TAG.SET, `${what} RDN`);
}

function checkBitString(der: Uint8Array, bits: Tlv, what: string) {
  if (bits.end === bits.start || der[bits.start]! > 7) throw new DerError(`${what} is not a valid BIT STRING`);
}
