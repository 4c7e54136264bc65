/**
 * @module The router's certificates for HTTPS: each `NAME.crt` + `NAME.key`
 * pair (PEM) in one directory. A certificate serves the SNI names its SANs
 * cover, wildcards included (`X509Certificate.checkHost` decides, as a client
 * would). Loading checks everything up front so a bad file stops the daemon
 * at start, named, rather than failing handshakes later.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";

/** A certificate directory the router cannot serve from; the message names the file. */
export class TlsCertError extends Error {}

export interface LoadedCert {
  readonly name: string;
  readonly x509: X509Certificate;
  readonly pem: { readonly cert: string; readonly key: string };
  readonly context: SecureContext;
}

function read(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new TlsCertError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function loadPair(dir: string, name: string, now: Date): LoadedCert {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  const cert = read(certFile);
  const key = read(keyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new TlsCertError(`${certFile} is not a PEM certificate: ${err instanceof Error ? err.message : String(err)}`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new TlsCertError(`${keyFile} is not a PEM private key: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!matches) throw new TlsCertError(`${keyFile} does not match the certificate ${certFile}`);
  if (new Date(x509.validTo) <= now) throw new TlsCertError(`${certFile} expired on ${x509.validTo}`);
  if (new Date(x509.validFrom) > now) throw new TlsCertError(`${certFile} is not valid before ${x509.validFrom}`);
  return { name, x509, pem: { cert, key }, context: createSecureContext({ cert, key }) };
}

/** Every pair in `dir`, by name; a `.crt` without its `.key` (or the reverse) is an error. */
export function loadCertificates(dir: string, now: Date): LoadedCert[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw new TlsCertError(`cannot read the certificate directory ${dir}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const names = new Set<string>();
  for (const entry of entries) {
    const ext = path.extname(entry);
    if (ext !== ".crt" && ext !== ".key") continue;
    const name = entry.slice(0, -ext.length);
    const other = ext === ".crt" ? `${name}.key` : `${name}.crt`;
    if (!entries.includes(other)) throw new TlsCertError(`${path.join(dir, entry)} has no ${other} beside it`);
    names.add(name);
  }
  if (names.size === 0) throw new TlsCertError(`no NAME.crt + NAME.key pair in ${dir}`);
  return [...names].sort().map((name) => loadPair(dir, name, now));
}

/**
 * The certificate for an SNI name: the first (by file name) whose SANs cover
 * it, else the default one, else none (the handshake is refused).
 */
export function certificateFor(certs: readonly LoadedCert[], servername: string, fallback: LoadedCert | undefined): LoadedCert | undefined {
  return certs.find((c) => c.x509.checkHost(servername, { subject: "never" }) !== undefined) ?? fallback;
}

/** The certificate named by `--tls-default-cert`, which must be one of the pairs. */
export function defaultCertificate(certs: readonly LoadedCert[], name: string | undefined, dir: string): LoadedCert | undefined {
  if (name === undefined) return undefined;
  const found = certs.find((c) => c.name === name);
  if (found === undefined) throw new TlsCertError(`default certificate ${path.join(dir, `${name}.crt`)} not found`);
  return found;
}

export interface TlsSettings {
  readonly port: number;
  readonly certDir: string;
  readonly defaultCert?: string | undefined;
}

/** What an HTTPS listener serves with: loaded and checked. */
export interface TlsListener {
  readonly port: number;
  /** Where the pairs are (HAProxy reads them from there). */
  readonly certDir: string;
  readonly certs: readonly LoadedCert[];
  readonly fallback: LoadedCert | undefined;
}

export function loadTlsListener(settings: TlsSettings, now: Date): TlsListener {
  const certs = loadCertificates(settings.certDir, now);
  return { port: settings.port, certDir: settings.certDir, certs, fallback: defaultCertificate(certs, settings.defaultCert, settings.certDir) };
}
