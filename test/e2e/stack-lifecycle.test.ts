/**
 * `npm start` owns what it starts (issue 22): the stack started as the README
 * says, in a process group of its own as a terminal's job is, stops every
 * process it started — wrangler dev and its workerd, the registry, the agent,
 * the router — on Ctrl-C (SIGINT to the group), SIGTERM, a closed terminal
 * (SIGHUP) and when the stack script itself is SIGKILLed. A second start with
 * a port taken refuses, naming the port and its holder. Each start has its own
 * ports, state directory (D1 included), cell name, address and container range.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/control-plane";
import { freeContainerCidr, makeCellAddress, type CellAddress } from "../support/netns";
import { descendants, processTable, stillRunning, type Proc } from "../support/procs";
import { decommissionAgentCell, eventually } from "../support/stack";

const ROOT = resolve(import.meta.dirname, "../..");
const cellName = `stack-${process.pid}`;
let stateDir: string;
let cell: CellAddress;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "berth-stack-"));
  cell = await makeCellAddress();
  env = {
    ...process.env,
    BERTH_STATE_DIR: stateDir,
    BERTH_CELL_NAME: cellName,
    BERTH_CELL_ADDRESS: cell.address,
    BERTH_CONTAINER_CIDR: await freeContainerCidr(),
  };
});

// A failed test leaves no stack running: whatever npm start is still up is stopped as Ctrl-C would.
const started: Started[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) {
    if (s.npm.exitCode !== null || s.npm.signalCode !== null) continue;
    process.kill(-s.npm.pid!, "SIGINT");
    await s.exited;
  }
});

afterAll(async () => {
  // Decommission the cell the starts enrolled: the run leaves no table, cgroup or layer behind.
  if (stateDir) await decommissionAgentCell({ name: cellName, stateDir: join(stateDir, "cell") });
  await cell?.remove();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

interface Started {
  npm: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `npm start` as the README runs it, leading a process group of its own like a shell job. */
function npmStart(extraEnv: NodeJS.ProcessEnv = {}): Started {
  const npm = spawn("npm", ["start"], { cwd: ROOT, env: { ...env, ...extraEnv }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  npm.stdout!.on("data", (d: Buffer) => (output += d));
  npm.stderr!.on("data", (d: Buffer) => (output += d));
  const exited = new Promise<number | null>((r) => npm.once("exit", (code) => r(code)));
  const s = { npm, output: () => output, exited };
  started.push(s);
  return s;
}

const agentLog = () => {
  try {
    return readFileSync(join(stateDir, "cell/agent.log"), "utf8").slice(-3000);
  } catch {
    return "(no agent log)";
  }
};

/** Starts the stack on fresh ports; resolves once it says it runs, with every process it has then. */
async function runningStack(): Promise<Started & { procs: Proc[] }> {
  const [api, router] = [await freePort(), await freePort()];
  const s = npmStart({ BERTH_API_PORT: String(api), BERTH_ROUTER_PORT: String(router) });
  await eventually("the stack to run", async () => {
    if (s.npm.exitCode !== null) throw new Error(`npm start exited (${s.npm.exitCode}):\n${s.output()}`);
    return s.output().includes("Berth is running.") ? true : undefined;
  }, 240_000, 500);
  const procs = descendants(await processTable(), s.npm.pid!);
  // What the stack must own: the control plane and its workerd, the registry, the agent, the router.
  for (const what of ["wrangler", "workerd", "docker-registry", "agent/main.js", "agent/router/main.js"])
    expect(procs.some((p) => p.cmdline.includes(what)), `${what} among ${procs.map((p) => p.cmdline).join("\n")}\n${s.output()}\n${agentLog()}`).toBe(true);
  return { ...s, procs };
}

/** Every process the stack had is gone, and no process anywhere still names its state directory. */
async function nothingLeft(procs: Proc[]): Promise<void> {
  await eventually("every process of the stack to go", async () => {
    const left = [...(await stillRunning(procs)), ...(await processTable()).filter((p) => p.state !== "Z" && p.cmdline.includes(stateDir))];
    if (left.length > 0) throw new Error(`still running:\n${left.map((p) => `${p.pid} ${p.cmdline}`).join("\n")}`);
    return true;
  }, 20_000, 250);
}

describe.sequential("npm start owns its children", () => {
  it.each([
    ["Ctrl-C (SIGINT to the group)", "SIGINT"],
    ["SIGTERM to the group", "SIGTERM"],
    ["a closed terminal (SIGHUP to the group)", "SIGHUP"],
  ] as const)("stops every process it started on %s", async (_what, signal) => {
    const s = await runningStack();
    process.kill(-s.npm.pid!, signal);
    await nothingLeft(s.procs);
    expect(s.output()).toContain(`${signal}: stopping...`);
  }, 300_000);

  it("stops every process it started when the stack script is SIGKILLed", async () => {
    const s = await runningStack();
    const script = s.procs.find((p) => p.cmdline.includes("scripts/stack.ts"));
    expect(script).toBeDefined();
    process.kill(script!.pid, "SIGKILL");
    await nothingLeft(s.procs);
  }, 300_000);
});

describe("a second start with a port taken", () => {
  it.each([
    ["BERTH_API_PORT"],
    ["BERTH_ROUTER_PORT"],
  ] as const)("refuses with the port and its holder when %s is in use", async (envVar) => {
    const port = await freePort();
    const holder = spawn(process.execPath, ["-e", `require("net").createServer().listen(${port}, "127.0.0.1", () => console.log("up"))`], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      await new Promise((r) => holder.stdout!.once("data", r));
      const other = envVar === "BERTH_API_PORT" ? "BERTH_ROUTER_PORT" : "BERTH_API_PORT";
      const s = npmStart({ [envVar]: String(port), [other]: String(await freePort()) });
      expect(await s.exited).not.toBe(0);
      expect(s.output()).toContain(`port ${port} is in use by PID ${holder.pid} (node): stop it or set ${envVar}`);
      // It started nothing: no control plane went up against the holder.
      expect(s.output()).not.toContain("starting the control plane");
    } finally {
      holder.kill();
    }
  }, 120_000);
});
