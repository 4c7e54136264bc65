/**
 * The whole local stack (`npm start`): the control plane under wrangler dev
 * with its local D1, a registry on loopback holding the demo image (busybox
 * httpd with a CGI page, built offline), one cell agent and the router. State
 * lives in .berth/ (BERTH_STATE_DIR moves it, D1 included). The stack owns what it starts: every
 * daemon is on a leash (test/support/leash.ts), so Ctrl-C, SIGTERM, a closed
 * terminal or this script dying in any way stops them all, and containers stay
 * for the next start to re-adopt. It refuses to start on a port another
 * process holds.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { buildAndPushFixtures } from "../test/fixtures/build-images";
import { startControlPlane } from "../test/support/control-plane";
import { requireFreePort } from "../test/support/ports";
import { startRegistry } from "../test/support/registry";
import { adminCall, enrollmentToken, registerRouter, startAgentProcess, startRouterProcess, type Daemon } from "../test/support/stack";

const ROOT = resolve(import.meta.dirname, "..");
const env = process.env;
const STATE = env.BERTH_STATE_DIR ? resolve(env.BERTH_STATE_DIR) : join(ROOT, ".berth");
// The D1 sits with the rest of the state when that was moved; else where wrangler keeps it.
const D1_DIR = env.BERTH_STATE_DIR ? join(STATE, "d1") : join(ROOT, ".wrangler/state");
const API_PORT = Number(env.BERTH_API_PORT ?? 8787);
const ROUTER_PORT = Number(env.BERTH_ROUTER_PORT ?? 8080);
const CELL_NAME = env.BERTH_CELL_NAME ?? "local";
const CONTAINER_CIDR = env.BERTH_CONTAINER_CIDR ?? "10.254.0.0/22";

function devVars(): Record<string, string> {
  const text = readFileSync(join(ROOT, ".dev.vars"), "utf8");
  return Object.fromEntries(text.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

/** Resolves once the agent logs that it runs (after byte `from` of its log); throws with the log's end if it exits first. */
async function agentRunning(agent: Daemon, from: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const log = readFileSync(agent.logFile).subarray(from).toString();
    if (log.includes('"msg":"cell agent running"')) return;
    if (agent.process.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the cell agent ${agent.process.exitCode !== null ? "exited" : "did not start"}; the end of ${agent.logFile}:\n${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Whether the cell in `dir` is enrolled with the control plane at `apiUrl`: its agent keeps one identity per API URL (a new port enrolls again). */
function registeredWith(dir: string, apiUrl: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, "cell.json"), "utf8")) as { api_url?: string }).api_url === apiUrl;
  } catch {
    return false;
  }
}

/** The cell's address: this host's own non-loopback IPv4 (published ports never go on 127.0.0.1). */
function hostAddress(): string {
  if (process.env.BERTH_CELL_ADDRESS) return process.env.BERTH_CELL_ADDRESS;
  const addrs = JSON.parse(execFileSync("ip", ["-4", "-j", "addr", "show", "scope", "global"], { encoding: "utf8" })) as { ifname: string; addr_info: { local: string }[] }[];
  const a = addrs.flatMap((i) => i.addr_info.map((x) => x.local)).find(Boolean);
  if (!a) throw new Error("no global IPv4 address on this host: set BERTH_CELL_ADDRESS to an address of this machine");
  return a;
}

const say = (s: string) => process.stdout.write(`stack: ${s}\n`);

/** What has started, stopped in reverse groups: router and agent first, then what they talk to. */
const running: { stop(): Promise<unknown> }[][] = [[], []];
let stopping: Promise<void> | undefined;

function stop(why: string, code: number): Promise<void> {
  stopping ??= (async () => {
    if (running.flat().length === 0) process.exit(code);
    say(`${why}: stopping...`);
    for (const group of running) await Promise.all(group.map((d) => d.stop().catch((e) => say(`stop: ${(e as Error).message}`))));
    say("stopped (containers keep running and are re-adopted next time)");
    process.exit(code);
  })();
  return stopping;
}

async function main() {
  // Before anything starts: never go on against someone else's process on our ports.
  await requireFreePort("127.0.0.1", API_PORT, "BERTH_API_PORT");
  await requireFreePort("127.0.0.1", ROUTER_PORT, "BERTH_ROUTER_PORT");
  // 0711: containers' mapped root users traverse it to their root filesystems.
  await mkdir(STATE, { recursive: true, mode: 0o711 });
  await chmod(STATE, 0o711);
  const vars = devVars();
  say("starting the control plane (wrangler dev, local D1)...");
  const cp = await startControlPlane({
    port: API_PORT, persistDir: D1_DIR, adminToken: vars.ADMIN_TOKEN, encryptionKey: vars.ENCRYPTION_KEY,
    adminPassword: vars.ADMIN_PASSWORD, tokenSigningKey: vars.TOKEN_SIGNING_KEY,
    // Apps answer at the router's port: the CLI prints route URLs with it.
    vars: { APPS_PORT: String(ROUTER_PORT) },
  });
  running[1]!.push(cp);
  say("starting the registry and building the demo image...");
  const registry = await startRegistry();
  running[1]!.push(registry);
  await buildAndPushFixtures(registry.host);
  await adminCall(cp, "PATCH", "/v3/admin/docker_registry_access", { insecure_registries: [registry.host] });

  const cellDir = join(STATE, "cell");
  const registered = registeredWith(cellDir, cp.url);
  say("starting the cell agent...");
  const agentLogFrom = existsSync(join(cellDir, "agent.log")) ? statSync(join(cellDir, "agent.log")).size : 0;
  const agent = await startAgentProcess({
    apiUrl: cp.url, ...(registered ? {} : { enrollmentToken: await enrollmentToken(cp, "cell") }),
    name: CELL_NAME, address: hostAddress(), stateDir: cellDir, containerCidr: CONTAINER_CIDR, portMin: 61000, portMax: 61999,
  });
  running[0]!.push(agent);
  await agentRunning(agent, agentLogFrom);
  const tokenFile = join(STATE, "router-token");
  if (!existsSync(tokenFile)) await writeFile(tokenFile, await registerRouter(cp, `${CELL_NAME}-router`), { mode: 0o600 });
  say("starting the router...");
  const router = await startRouterProcess(cp.url, readFileSync(tokenFile, "utf8").trim(), join(STATE, "router.log"), ROUTER_PORT);
  running[0]!.push(router);

  process.stdout.write(`
Berth is running.
  control plane  ${cp.url}          (admin token: ${cp.adminToken}, admin password: ${cp.adminPassword})
  router         http://127.0.0.1:${router.port}   (apps at http://<app>.apps.localhost:${router.port})
  registry       ${registry.host}   (demo image: ${registry.host}/demo:latest)
  logs           ${join(STATE, "cell/agent.log")}, ${join(STATE, "router.log")}

Next, in another terminal:
  npx berth api ${cp.url}
  npx berth login                     (paste the admin token at the prompt)
  npx berth create-space dev && npx berth target -s dev
  npx berth enable-feature-flag diego_docker
  npx berth push demo -o ${registry.host}/demo:latest -m 64M -k 64M
  curl http://demo.apps.localhost:${router.port}/      (its instance, VCAP_APPLICATION and uptime)
  npx berth scale demo -i 3                          (then curl again: other instances answer)

Or with the cf CLI:
  cf api ${cp.url} && cf auth admin ${cp.adminPassword}
  cf create-org demo && cf target -o demo && cf create-space dev && cf target -s dev

Ctrl-C stops the stack (containers keep running and are re-adopted next time).
`);
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void stop(signal, 0));
// A closed terminal: writing to it fails (EIO/EPIPE) instead of crashing the stop.
process.stdout.on("error", () => void stop("terminal gone", 0));
try {
  await main();
} catch (e) {
  process.stderr.write(`stack: ${(e as Error).message}\n`);
  await stop("failed", 1);
}
