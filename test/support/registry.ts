/**
 * @module A real registry for tests: Debian's `docker-registry` (distribution
 * 2.8) listening on 127.0.0.1 (or a given address) port 0, its port read
 * from its "listening on ADDRESS:PORT" log line. Modes: anonymous, htpasswd Basic,
 * bearer tokens from a small issuer (token-issuer.ts), each optionally over
 * TLS with a CA the test makes. Several registries can serve one storage
 * directory (the extra ones read-only), so the fixtures are pushed once.
 * Also the fault doubles a registry client must survive: a server that
 * accepts and never answers, and an address where nothing listens.
 */
import { execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { leash } from "./leash";
import { makeSigningCert, makeTestCa } from "./tls";
import { startTokenIssuer, type TokenIssuer } from "./token-issuer";

const run = promisify(execFile);

export type RegistryAuthMode =
  | { kind: "anonymous" }
  | { kind: "basic"; username: string; password: string }
  | { kind: "token"; username: string; password: string; anonymousPull?: boolean };

export interface StartRegistryOptions {
  auth?: RegistryAuthMode;
  /** Serve https with a certificate from a fresh test CA (`caPem` on the result). */
  tls?: boolean;
  /** Serve an existing storage directory read-only instead of a fresh empty one. */
  storageDir?: string;
  /** How long to wait for the "listening on" line. */
  startTimeoutMs?: number;
  /** IPv4 address to listen on (default 127.0.0.1; another for cells in network namespaces). */
  listen?: string;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`: the registry part of an image reference. */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://…`. */
  url: string;
  caPem?: string;
  storageDir: string;
  tokenIssuer?: TokenIssuer;
  stop(): Promise<void>;
}

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "berth-registry-"));
  const storageDir = opts.storageDir ?? join(dir, "storage");
  const auth = opts.auth ?? { kind: "anonymous" };
  let tokenIssuer: TokenIssuer | undefined;
  let caPem: string | undefined;

  const listen = opts.listen ?? "127.0.0.1";
  const http: Record<string, unknown> = { addr: `${listen}:0`, secret: randomBytes(16).toString("hex") };
  if (opts.tls) {
    const ca = await makeTestCa(dir);
    caPem = ca.caPem;
    http.tls = { certificate: ca.serverCertPath, key: ca.serverKeyPath };
  }

  let authConfig: Record<string, unknown> | undefined;
  if (auth.kind === "basic") {
    const { stdout } = await run("htpasswd", ["-Bbn", auth.username, auth.password]);
    await writeFile(join(dir, "htpasswd"), stdout);
    authConfig = { htpasswd: { realm: "berth-test", path: join(dir, "htpasswd") } };
  } else if (auth.kind === "token") {
    const signing = await makeSigningCert(dir);
    const service = "berth-test-registry";
    const issuer = "berth-test-issuer";
    tokenIssuer = await startTokenIssuer({ signing, issuer, service, username: auth.username, password: auth.password, anonymousPull: auth.anonymousPull ?? false });
    authConfig = { token: { realm: tokenIssuer.realm, service, issuer, rootcertbundle: signing.certPath } };
  }

  // YAML is a superset of JSON, so the config is written as JSON.
  const config = {
    version: 0.1,
    log: { level: "info", accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false }, readonly: { enabled: opts.storageDir !== undefined } },
    },
    http,
    ...(authConfig ? { auth: authConfig } : {}),
  };
  const configPath = join(dir, "config.yml");
  await writeFile(configPath, JSON.stringify(config));

  // On a leash: a crashed test run or stack leaves no registry behind on this shared machine.
  const registry = leash(["docker-registry", "serve", configPath], { stdout: "ignore", stderr: "pipe" });
  const child = registry.process;
  let port: number;
  try {
    port = await listeningPort(child, listen, opts.startTimeoutMs ?? 10_000);
  } catch (err) {
    await registry.stop();
    await tokenIssuer?.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const host = `${listen}:${port}`;
  return {
    host,
    url: `${opts.tls ? "https" : "http"}://${host}`,
    caPem,
    storageDir,
    tokenIssuer,
    async stop() {
      await registry.stop();
      await tokenIssuer?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with the port from the registry's "listening on ADDRESS:PORT" log line. */
function listeningPort(child: ChildProcess, listen: string, timeoutMs: number): Promise<number> {
  const line = new RegExp(`listening on ${listen.replaceAll(".", "\\.")}:(\\d+)`);
  return new Promise((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => fail(new Error(`docker-registry did not report its port within ${timeoutMs} ms:\n${log}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const m = line.exec(log);
      if (m) {
        cleanup();
        // Keep draining stderr so the registry never blocks on a full pipe.
        child.stderr?.resume();
        resolve(Number(m[1]));
      }
    };
    const onExit = (code: number | null) => fail(new Error(`docker-registry exited (${code}) before listening:\n${log}`));
    const fail = (err: Error) => { cleanup(); reject(err); };
    const cleanup = () => {
      clearTimeout(timer);
      child.stderr?.off("data", onData);
      child.off("exit", onExit);
      child.off("error", fail);
    };
    child.stderr?.on("data", onData);
    child.once("exit", onExit);
    child.once("error", fail);
  });
}

export interface HangingServer {
  host: string;
  stop(): Promise<void>;
}

/** Accepts TCP connections and never answers: the client's timeout must fire. */
export async function startHangingServer(): Promise<HangingServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * `127.0.0.1:PORT` where nothing listens: a port just taken from the kernel and
 * released. Another process could take it again, but not within a test's span
 * in practice (the kernel hands out ephemeral ports in sequence).
 */
export async function stoppedAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}
