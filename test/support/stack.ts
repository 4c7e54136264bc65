/**
 * The whole Berth stack on this machine for end-to-end tests and the local
 * stack: the control plane under wrangler dev, cell agents and a router as real
 * processes (built: dist/), enrolled through the real API.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { request } from "node:http";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";
import { freePort, startControlPlane, type ControlPlane } from "./control-plane";
import { leash } from "./leash";
import { freeContainerCidr, makeCellAddress, type CellAddress } from "./netns";

const ROOT = resolve(import.meta.dirname, "../..");
// The built agent and router (npm run build; the global setup builds them), as
// production runs them: plain node, no TypeScript loader.
const AGENT = [process.execPath, "dist/agent/main.js"];
const ROUTER = [process.execPath, "dist/agent/router/main.js"];

export async function adminCall<T = any>(cp: Pick<ControlPlane, "url" | "adminToken">, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${cp.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${cp.adminToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

export const enrollmentToken = async (cp: ControlPlane, kind: "cell" | "router") =>
  (await adminCall<{ token: string }>(cp, "POST", "/v3/cells/enrollment_tokens", { kind })).token;

export async function registerRouter(cp: ControlPlane, name: string): Promise<string> {
  const res = await fetch(`${cp.url}/v3/cells/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ protocol: PROTOCOL_VERSION, enrollment_token: await enrollmentToken(cp, "router"), name }),
  });
  if (!res.ok) throw new Error(`router registration: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { credential: string }).credential;
}

export interface Daemon {
  process: ChildProcess;
  logFile: string;
  /** Sends a signal; resolves when the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM, SIGKILL to its process group after the grace period; resolves when all is gone. */
  stop(): Promise<void>;
}

/** argv run in the network namespace at `netns` when given: nsenter --net only (not `ip netns exec`), so the host's mounts stay visible. */
const inNetns = (argv: string[], netns?: string): string[] => (netns ? ["nsenter", `--net=${netns}`, ...argv] : argv);

function daemon(argv: string[], env: NodeJS.ProcessEnv, logFile: string, opts: { netns?: string } = {}): Daemon {
  const log = openSync(logFile, "a");
  // On a leash: the daemon goes when this process does, however it ends (its containers stay).
  const d = leash(inNetns(argv, opts.netns), { cwd: ROOT, env: { ...process.env, ...env }, stdout: log, stderr: log });
  closeSync(log);
  return {
    process: d.process,
    logFile,
    async kill(signal = "SIGTERM") {
      await d.signal(signal);
      await d.exited;
    },
    stop: d.stop,
  };
}

export interface AgentOptions {
  apiUrl: string;
  /** Needed until the cell has registered (its state dir then holds cell.json). */
  enrollmentToken?: string;
  name: string;
  address: string;
  stateDir: string;
  containerCidr: string;
  portMin: number;
  portMax: number;
  zone?: string;
  memoryMb?: number;
  netns?: string;
  extra?: string[];
}

export async function startAgentProcess(o: AgentOptions): Promise<Daemon> {
  await mkdir(o.stateDir, { recursive: true });
  return daemon(
    [...AGENT, "--api", o.apiUrl, ...(o.enrollmentToken ? ["--enrollment-token", o.enrollmentToken] : []), "--name", o.name, "--zone", o.zone ?? "z1",
      "--address", o.address, "--state-dir", o.stateDir, "--container-cidr", o.containerCidr, "--cgroup-parent", `berth-${o.name}`,
      "--port-min", String(o.portMin), "--port-max", String(o.portMax), "--memory-mb", String(o.memoryMb ?? 4096),
      "--disk-mb", "16384", "--containers", "32", "--heartbeat-ms", "1000", "--bulk-sync-ms", "3000", "--stop-grace-ms", "2000", ...(o.extra ?? [])],
    {},
    join(o.stateDir, "agent.log"),
    o.netns ? { netns: o.netns } : {},
  );
}

/**
 * `agent/main.ts teardown` for a cell this file's startAgentProcess ran (its
 * cgroup parent is `berth-<name>`): decommissions what the agent left on the host.
 */
export function teardownAgentCell(o: { name: string; stateDir: string; cgroupParent?: string; netns?: string }): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = [...AGENT, "teardown", "--name", o.name, "--state-dir", o.stateDir, "--cgroup-parent", o.cgroupParent ?? `berth-${o.name}`];
  // In the cell's network namespace, where its veths and nft table live.
  const [cmd, ...args] = inNetns(argv, o.netns);
  const child = spawn(cmd!, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Decommissions a stopped test cell (docs/deploy.md): teardown, then its state dir; the run leaves nothing on the host. */
export async function decommissionAgentCell(o: Parameters<typeof teardownAgentCell>[0]): Promise<void> {
  const t = await teardownAgentCell(o);
  if (t.code !== 0) throw new Error(`teardown of cell ${o.name} failed: ${t.stderr}`);
  await rm(o.stateDir, { recursive: true, force: true });
}

/** How many instances the agent with this state dir still keeps (its saved specs). */
export const keptInstances = async (stateDir: string): Promise<number> => (await readdir(join(stateDir, "instances")).catch(() => [])).length;

/** Starts the router on a free loopback port; resolves once it listens. */
export async function startRouterProcess(apiUrl: string, token: string, logFile: string, port?: number): Promise<Daemon & { port: number }> {
  const listenPort = port ?? (await freePort());
  const d = daemon([...ROUTER, "--api-url", apiUrl, "--listen", "127.0.0.1", "--port", String(listenPort), "--workers", "0"], { BERTH_ROUTER_TOKEN: token }, logFile);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await getVia(listenPort, "nothing.invalid");
      break;
    } catch {
      if (d.process.exitCode !== null || Date.now() > deadline) throw new Error(`router did not start; see ${logFile}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { ...d, port: listenPort };
}

/** GET through the router with a Host header (fetch forbids setting Host). */
export function getVia(port: number, host: string, path = "/"): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers: { host }, agent: false, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.once("timeout", () => req.destroy(new Error("router request timed out")));
    req.once("error", reject);
    req.end();
  });
}

/** Polls `check` until it returns a value (not undefined) or the timeout passes. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface OneCellStack {
  cp: ControlPlane;
  cell: CellAddress;
  agent: Daemon;
  router: Daemon & { port: number };
  stateDir: string;
  /** Waits for the cell to have stopped every container (delete the apps first), stops everything and decommissions the cell. */
  stop(): Promise<void>;
}

/**
 * The local stack end-to-end suites push through: a control plane, one cell
 * agent on a cell address of its own, the router, and `registryHost` marked
 * insecure for staging and pulls.
 */
export async function startOneCellStack(o: { name: string; registryHost: string; portMin: number; portMax: number; agentExtra?: string[] }): Promise<OneCellStack> {
  const cp = await startControlPlane({ vars: { LONG_POLL_HOLD_MS: "5000" } });
  const cell = await makeCellAddress();
  const stateDir = await mkdtemp(join(tmpdir(), "berth-e2e-cell-"));
  const agent = await startAgentProcess({
    apiUrl: cp.url, enrollmentToken: await enrollmentToken(cp, "cell"), name: o.name,
    address: cell.address, stateDir, containerCidr: await freeContainerCidr(), portMin: o.portMin, portMax: o.portMax, extra: o.agentExtra ?? [],
  });
  const router = await startRouterProcess(cp.url, await registerRouter(cp, `router-${o.name}`), join(stateDir, "router.log"));
  await adminCall(cp, "PATCH", "/v3/admin/docker_registry_access", { insecure_registries: [o.registryHost] });
  return {
    cp, cell, agent, router, stateDir,
    async stop() {
      // Leave nothing behind: wait until the cell has stopped every container.
      await eventually("the cell to stop its containers", async () => ((await keptInstances(stateDir)) === 0 ? true : undefined), 60_000);
      await router.kill();
      await agent.kill();
      await cp.stop();
      await cell.remove();
      // Decommission the cell (docs/deploy.md): the run leaves no table, mount, cgroup or loop device behind.
      await decommissionAgentCell({ name: o.name, stateDir });
    },
  };
}
