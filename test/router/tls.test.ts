/**
 * HTTPS on the router daemon: certificates from a directory chosen by SNI
 * (wildcard SANs included), requests routed as over HTTP with
 * X-Forwarded-Proto https, names no certificate covers refused, and bad
 * certificate directories stopping the daemon with exit 2 and the file named.
 */
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Backend, LOOPBACK, route, spawnRouterDaemon, startBackend, startFakeControlPlane, until } from "./support";

const TOKEN = "tls-test-token";
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let pki: string;
function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: pki, stdio: ["ignore", "ignore", "pipe"] });
}
/** A P-256 key and a CSR for it. */
function keyAndCsr(name: string): void {
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
}
/** Signed by the test CA, with these SANs and this validity. */
function issue(name: string, san: string, dates: string[] = []): void {
  keyAndCsr(name);
  writeFileSync(path.join(pki, `${name}.ext`), `[e]\nsubjectAltName=${san}\n`);
  openssl("ca", "-batch", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt", "-in", `${name}.csr`, "-out", `${name}.crt`, "-notext", "-extfile", `${name}.ext`, "-extensions", "e", ...(dates.length > 0 ? dates : ["-days", "2"]));
}
/** A certificate directory holding these pairs from the PKI dir. */
function certDir(...names: string[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "berth-router-certs-"));
  for (const name of names) for (const ext of ["crt", "key"]) copyFileSync(path.join(pki, `${name}.${ext}`), path.join(dir, `${name}.${ext}`));
  return dir;
}

beforeAll(() => {
  pki = mkdtempSync(path.join(os.tmpdir(), "berth-router-pki-"));
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=berth test CA");
  writeFileSync(path.join(pki, "index.txt"), "");
  writeFileSync(path.join(pki, "serial"), "01\n");
  writeFileSync(path.join(pki, "ca.cnf"), "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\ncopy_extensions=none\n[p]\ncommonName=supplied\n");
  issue("apps", "DNS:*.apps.example.test");
  issue("other", "DNS:other.example.test");
  issue("old", "DNS:old.example.test", ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"]);
});
afterAll(() => rmSync(pki, { recursive: true, force: true }));

interface TlsReply {
  status: number;
  body: string;
}
/** GET over TLS to the router with this SNI name (and Host), trusting only the test CA. */
function httpsGet(port: number, servername: string, headers: Record<string, string> = {}): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: LOOPBACK, port, servername, path: "/", headers: { host: servername, ...headers }, ca: readFileSync(path.join(pki, "ca.crt")), agent: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

function daemonArgs(cpUrl: string, tlsArgs: string[]): string[] {
  return ["--api-url", cpUrl, "--listen", LOOPBACK, "--port", "0", "--workers", "0", "--poll-jitter-ms", "0", ...tlsArgs];
}

/** A control plane routing demo.apps.example.test (and other.example.test) to a backend, and the daemon serving `pairs` over TLS. */
async function routerWithCerts(...pairs: string[]): Promise<{ backend: Backend; tlsPort: number }> {
  const cp = await startFakeControlPlane({ token: TOKEN, holdMs: 300 });
  cleanups.push(() => cp.stop());
  const backend = await startBackend("demo");
  cleanups.push(() => backend.close());
  cp.publish([route("demo.apps.example.test", backend.port), route("other.example.test", backend.port)]);
  const dir = certDir(...pairs);
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const d = spawnRouterDaemon(daemonArgs(cp.url, ["--tls-port", "0", "--tls-cert-dir", dir]), { BERTH_ROUTER_TOKEN: TOKEN });
  cleanups.push(() => d.kill());
  await until(() => d.lines.some((l) => l.msg === "route table received") && d.port("listening") !== undefined, 60_000, () => `daemon up: ${d.stderr()}`);
  return { backend, tlsPort: d.lines.find((l) => l.msg === "tls listening")?.port as number };
}

describe("the router daemon over HTTPS", () => {
  it("serves a wildcard certificate chosen by SNI and routes with X-Forwarded-Proto https", async () => {
    const { backend, tlsPort } = await routerWithCerts("apps", "other");
    expect(tlsPort).toBeGreaterThan(0);

    const reply = await httpsGet(tlsPort, "demo.apps.example.test");
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ backend: "demo" });
    expect(backend.requests.at(-1)!.headers["x-forwarded-proto"]).toBe("https");
    // The second pair serves its own name.
    expect((await httpsGet(tlsPort, "other.example.test")).status).toBe(200);
  }, 120_000);

  it("does not let a client claim another scheme: X-Forwarded-Proto is the real one", async () => {
    const { backend, tlsPort } = await routerWithCerts("apps");
    await httpsGet(tlsPort, "demo.apps.example.test", { "x-forwarded-proto": "http" });
    expect(backend.requests.at(-1)!.headers["x-forwarded-proto"]).toBe("https");
  }, 120_000);

  it("refuses the handshake for a name no certificate covers, unless a default certificate is given", async () => {
    const cp = await startFakeControlPlane({ token: TOKEN, holdMs: 300 });
    cleanups.push(() => cp.stop());
    const backend = await startBackend("demo");
    cleanups.push(() => backend.close());
    cp.publish([route("demo.apps.example.test", backend.port)]);
    const dir = certDir("apps", "other");
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));

    const strict = spawnRouterDaemon(daemonArgs(cp.url, ["--tls-port", "0", "--tls-cert-dir", dir]), { BERTH_ROUTER_TOKEN: TOKEN });
    cleanups.push(() => strict.kill());
    const withDefault = spawnRouterDaemon(daemonArgs(cp.url, ["--tls-port", "0", "--tls-cert-dir", dir, "--tls-default-cert", "other"]), { BERTH_ROUTER_TOKEN: TOKEN });
    cleanups.push(() => withDefault.kill());
    const tlsPortOf = (d: typeof strict): number | undefined => d.lines.find((l) => l.msg === "tls listening")?.port as number | undefined;
    await until(() => tlsPortOf(strict) !== undefined && tlsPortOf(withDefault) !== undefined, 60_000, () => `daemons up: ${strict.stderr()} ${withDefault.stderr()}`);

    // Nested names are not covered by a one-label wildcard either.
    for (const name of ["nobody.example.org", "a.demo.apps.example.test"]) {
      await expect(httpsGet(tlsPortOf(strict)!, name)).rejects.toThrow();
    }
    expect(backend.requests).toHaveLength(0);
    // With a default the handshake completes with that certificate, which a client checking names then rejects.
    await expect(httpsGet(tlsPortOf(withDefault)!, "nobody.example.org")).rejects.toThrow(/altnames|nobody\.example\.org/);
  }, 120_000);
});

describe("bad certificate directories stop the daemon with exit 2, naming the file", () => {
  async function exitOf(tlsArgs: string[]): Promise<{ code: number | null; stderr: string }> {
    const d = spawnRouterDaemon(daemonArgs("http://127.0.0.1:9", tlsArgs), { BERTH_ROUTER_TOKEN: TOKEN });
    cleanups.push(() => d.kill());
    const [code] = (await once(d.child, "exit")) as [number | null];
    return { code, stderr: d.stderr() };
  }

  it("a missing directory", async () => {
    const missing = path.join(os.tmpdir(), `berth-no-such-certs-${process.pid}`);
    const { code, stderr } = await exitOf(["--tls-port", "0", "--tls-cert-dir", missing]);
    expect(code).toBe(2);
    expect(stderr).toContain(missing);
  }, 60_000);

  it("an unreadable key", async () => {
    const dir = certDir("apps");
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const key = path.join(dir, "apps.key");
    rmSync(key);
    mkdirSync(key); // reading a directory fails for root too
    const { code, stderr } = await exitOf(["--tls-port", "0", "--tls-cert-dir", dir]);
    expect(code).toBe(2);
    expect(stderr).toContain(key);
  }, 60_000);

  it("a key that does not match its certificate", async () => {
    const dir = certDir("apps");
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    copyFileSync(path.join(pki, "other.key"), path.join(dir, "apps.key"));
    const { code, stderr } = await exitOf(["--tls-port", "0", "--tls-cert-dir", dir]);
    expect(code).toBe(2);
    expect(stderr).toContain(path.join(dir, "apps.key"));
    expect(stderr).toContain("does not match");
  }, 60_000);

  it("an expired certificate", async () => {
    const dir = certDir("apps", "old");
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const { code, stderr } = await exitOf(["--tls-port", "0", "--tls-cert-dir", dir]);
    expect(code).toBe(2);
    expect(stderr).toContain(path.join(dir, "old.crt"));
    expect(stderr).toContain("expired");
  }, 60_000);

  it("a default certificate that is not in the directory", async () => {
    const dir = certDir("apps");
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const { code, stderr } = await exitOf(["--tls-port", "0", "--tls-cert-dir", dir, "--tls-default-cert", "nope"]);
    expect(code).toBe(2);
    expect(stderr).toContain(path.join(dir, "nope.crt"));
  }, 60_000);
});
