/**
 * Starts the real control plane for Node-side tests, benches and the local stack:
 * `wrangler dev` (workerd + a local D1 in its own persist directory, migrations
 * applied) on a free loopback port, with its own admin token.
 */
import { execFile, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { leash } from "./leash";
import { randomBytes } from "node:crypto";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");

export interface ControlPlane {
  url: string;
  adminToken: string;
  /** The `admin` user's password (Worker secret ADMIN_PASSWORD), for the cf CLI. */
  adminPassword: string;
  persistDir: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Address to listen on (an address network namespaces can reach, for multi-cell tests). */
  host?: string;
  /** Extra Worker vars (e.g. a short LONG_POLL_HOLD_MS). */
  vars?: Record<string, string>;
  /** Reuse a persist directory (to restart the same control plane). */
  persistDir?: string;
  port?: number;
  /**
   * Another wrangler config (e.g. one pointing at a prebuilt bundle, so edits
   * elsewhere in the tree do not reload the Worker mid-run).
   */
  config?: string;
  /** Fixed secrets (the local stack keeps them in .dev.vars); random when absent. */
  adminToken?: string;
  encryptionKey?: string;
  adminPassword?: string;
  tokenSigningKey?: string;
  /** Where wrangler's output goes (default: kept in memory for error messages). */
  log?: (chunk: string) => void;
  /** wrangler's log level (default BERTH_WRANGLER_LOG, or warn); "log" passes the Worker's console.log on. */
  logLevel?: string;
}

/** A port that was free a moment ago (wrangler takes no port 0). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

/** Fresh secrets (admin token and password, encryption and signing keys); a test that restarts one control plane keeps them. */
export function controlPlaneSecrets(): { adminToken: string; encryptionKey: string; adminPassword: string; tokenSigningKey: string } {
  return {
    adminToken: `bu_${randomBytes(24).toString("hex")}`,
    encryptionKey: randomBytes(32).toString("base64"),
    adminPassword: randomBytes(12).toString("hex"),
    tokenSigningKey: randomBytes(32).toString("hex"),
  };
}

const QUIET_ENV = { WRANGLER_SEND_METRICS: "false", WRANGLER_LOG: process.env.BERTH_WRANGLER_LOG ?? "warn", NO_COLOR: "1" };

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const host = opts.host ?? "127.0.0.1";
  const persistDir = opts.persistDir ?? (await mkdtemp(join(tmpdir(), "berth-d1-")));
  const logLevel = opts.logLevel ?? process.env.BERTH_WRANGLER_LOG ?? "warn";
  const env = { ...process.env, ...QUIET_ENV, WRANGLER_LOG: logLevel };
  const config = opts.config ? ["--config", opts.config] : [];
  await run(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir, ...config], { cwd: ROOT, env });
  const fresh = controlPlaneSecrets();
  const adminToken = opts.adminToken ?? fresh.adminToken;
  const adminPassword = opts.adminPassword ?? fresh.adminPassword;
  const vars = {
    ADMIN_TOKEN: adminToken,
    ENCRYPTION_KEY: opts.encryptionKey ?? fresh.encryptionKey,
    ADMIN_PASSWORD: adminPassword,
    TOKEN_SIGNING_KEY: opts.tokenSigningKey ?? fresh.tokenSigningKey,
    ...opts.vars,
  };
  const port = opts.port ?? (await freePort(host));
  const args = ["dev", ...config, "--ip", host, "--port", String(port), "--inspector-port", "0", "--persist-to", persistDir,
    "--show-interactive-dev-session=false", "--log-level", logLevel];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  // On a leash: wrangler and its workerd go when this process does, however it ends.
  const wrangler = leash([WRANGLER, ...args], { cwd: ROOT, env });
  const child = wrangler.process;
  let output = "";
  const onData = (d: Buffer) => {
    output = (output + d).slice(-20_000);
    opts.log?.(String(d));
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${output}`);
    try {
      const res = await fetch(`${url}/v3/info`);
      // Make sure the listener is ours: our Worker answers with our request id header.
      if (res.headers.has("x-request-id")) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await wrangler.stop();
      throw new Error(`wrangler dev did not come up on ${url}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    adminToken,
    adminPassword,
    persistDir,
    process: child,
    async stop() {
      await wrangler.stop();
      if (!opts.persistDir) await rm(persistDir, { recursive: true, force: true });
    },
  };
}
