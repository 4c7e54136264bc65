/**
 * @module Test certificates made with the openssl command line: a CA, a server
 * certificate for 127.0.0.1/localhost signed by it, and a self-signed signing
 * certificate for the registry's token issuer. EC P-256 keys: generating them
 * takes milliseconds where RSA takes a noticeable fraction of a second.
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface TestCa {
  /** PEM of the CA certificate: what a client must trust. */
  caPem: string;
  caCertPath: string;
  serverCertPath: string;
  serverKeyPath: string;
}

/** Makes a CA and a server certificate valid for 127.0.0.1, ::1 and localhost, in `dir`. */
export async function makeTestCa(dir: string): Promise<TestCa> {
  const p = (name: string) => join(dir, name);
  await run("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "2", "-subj", "/CN=berth-test-ca",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await run("openssl", [
    "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=127.0.0.1",
  ]);
  await writeFile(p("server.ext"), "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  await run("openssl", [
    "x509", "-req", "-in", p("server.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial",
    "-out", p("server.crt"), "-days", "2", "-extfile", p("server.ext"),
  ]);
  return { caPem: await readFile(p("ca.crt"), "utf8"), caCertPath: p("ca.crt"), serverCertPath: p("server.crt"), serverKeyPath: p("server.key") };
}

export interface SigningCert {
  keyPem: string;
  certPem: string;
  certPath: string;
}

/** A self-signed certificate whose key signs registry tokens (the registry trusts it via `rootcertbundle`). */
export async function makeSigningCert(dir: string): Promise<SigningCert> {
  const key = join(dir, "token.key");
  const cert = join(dir, "token.crt");
  await run("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=berth-test-token-issuer",
  ]);
  return { keyPem: await readFile(key, "utf8"), certPem: await readFile(cert, "utf8"), certPath: cert };
}
