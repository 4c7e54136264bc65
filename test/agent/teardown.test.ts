/**
 * Decommissioning a cell (`agent/main.ts teardown`) against real resources:
 * a stand-in agent process (test/support/cell-child.ts) runs httpd instances
 * through the real driver, one is stopped, the agent is killed with -9 (its
 * spare upper filesystems and prepared network namespaces stay), one container then dies while no
 * agent watches. Teardown refuses while the agent or any container runs,
 * naming them, and otherwise leaves the host exactly as it was before the
 * cell existed: no veth, address, nft table, mount, loop device, cgroup,
 * process or file of the cell. A second run succeeds.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { teardownCell, TeardownRefusedError } from "../../agent/cell/teardown";
import { berthTables } from "../../agent/network/host";
import { processStart } from "../../agent/rootfs/root-lock";
import { HTTPD_PAGE } from "../fixtures/images";
import { httpdSpec, resolveHttpd, testCellScope, type TestCellOptions } from "../support/cell";
import { cellHostState, type CellHostState } from "../support/cell-host";
import { freeContainerCidr, makeCellAddress, uniqueTag, type CellAddress } from "../support/netns";
import { teardownAgentCell } from "../support/stack";

const registry = inject("registry");

interface Instance {
  guid: string;
  hostPort: number;
  pid: number;
}

let base: string;
let cell: CellAddress;
let options: TestCellOptions;
let pristine: CellHostState;
let forwardingBefore: string;
let agent: ChildProcess;
let agentLines: AsyncIterator<string>;
const instances: Instance[] = [];

const snapshot = () => cellHostState(testCellScope(options));
const teardown = () => teardownAgentCell({ name: options.name, stateDir: options.stateDir, cgroupParent: options.cgroupParent });

/** The agent's next stdout line (the iterator buffers lines that arrive in a burst). */
async function nextLine(): Promise<string> {
  const next = await agentLines.next();
  if (next.done) throw new Error(`the stand-in agent exited (${agent.exitCode ?? agent.signalCode})`);
  return next.value;
}

async function gone(pid: number): Promise<void> {
  while (processStart(pid) !== null) await new Promise((r) => setTimeout(r, 10));
}

beforeAll(async () => {
  const httpd = await resolveHttpd(registry.host);
  base = await mkdtemp(join(tmpdir(), "berth-teardown-"));
  await chmod(base, 0o711); // the containers' mapped root users traverse it
  cell = await makeCellAddress();
  const tag = uniqueTag(4);
  const min = 40000 + Math.floor(Math.random() * 20000);
  options = {
    name: `td-${tag}`, stateDir: join(base, "cell"), cgroupParent: `berth-td-${tag}`, cellAddress: cell.address,
    containerCidr: await freeContainerCidr(), hostPorts: { min, max: min + 9 }, registryHost: registry.host, networkPool: 2,
  };
  forwardingBefore = (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim();
  pristine = await snapshot();
  agent = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "../support/cell-child.ts")], {
    env: { ...process.env, BERTH_CELL: JSON.stringify(options), BERTH_SPECS: JSON.stringify([0, 1, 2].map(() => httpdSpec(httpd))) },
    stdio: ["pipe", "pipe", "inherit"],
  });
  agentLines = createInterface({ input: agent.stdout! })[Symbol.asyncIterator]();
  for (let line = await nextLine(); line !== "ready"; line = await nextLine()) instances.push(JSON.parse(line) as Instance);
}, 120_000);

afterAll(async () => {
  if (agent?.exitCode === null && agent.signalCode === null) agent.kill("SIGKILL");
  for (const i of instances) if (processStart(i.pid) !== null) process.kill(i.pid, "SIGKILL");
  for (const i of instances) await gone(i.pid);
  if (options) await teardown();
  await cell?.remove();
  if (base) await rm(base, { recursive: true, force: true });
});

describe.sequential("teardown of a cell's host", () => {
  it("the stand-in agent serves its instances, and the snapshot sees the cell's host resources", async () => {
    for (const i of instances) expect(await (await fetch(`http://${cell.address}:${i.hostPort}/`)).text()).toBe(HTTPD_PAGE);
    const now = await snapshot();
    expect(now.nft).toMatch(/table inet berth_td_/);
    expect(now.links).toHaveLength(3 + 2); // the instances' and the network pool's
    // Pool namespaces are named after their veth; the instances run in three of them.
    expect(now.files.filter((f) => f.startsWith("netns/_"))).toHaveLength(3 + 2);
    expect(now.cgroupParents.length).toBeGreaterThanOrEqual(3);
    expect(now.mounts.some((m) => m.startsWith(`${options.stateDir}/netns `))).toBe(true); // the run dir's own bind mount
    expect(now.loops.length).toBeGreaterThanOrEqual(3);
    expect(pristine).toMatchObject({ nft: "absent", links: [], mounts: [], loops: [], cgroupParents: [], cgroups: [], processes: [], files: [] });
  });

  it("is refused while the agent runs, naming its pid, and changes nothing", async () => {
    const before = await snapshot();
    const r = await teardown();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the cell agent of ${options.stateDir} still runs (pid ${agent.pid}): stop it first`);
    expect(await snapshot()).toEqual(before);
  });

  it("after a stop and the agent's kill -9, is refused while containers run, naming every one", async () => {
    agent.stdin!.write(`stop ${instances[0]!.guid}\n`);
    expect(await nextLine()).toBe(`stopped ${instances[0]!.guid}`);
    const exited = new Promise((r) => agent.once("exit", r));
    agent.kill("SIGKILL");
    await exited;
    const before = await snapshot();
    const refusal = await teardownCell({ name: options.name, state_dir: options.stateDir, cgroup_parent: options.cgroupParent }).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(TeardownRefusedError);
    expect(refusal).toMatchObject({ code: "containers_running", running: [instances[1]!.guid, instances[2]!.guid].sort() });
    expect((refusal as Error).message).toMatch(/still run: .*; drain the cell/);
    expect(await snapshot()).toEqual(before);
  });

  it("a container that died while no agent watched is not running: only the live one is named", async () => {
    process.kill(instances[2]!.pid, "SIGKILL");
    await gone(instances[2]!.pid);
    const r = await teardown();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`still run: ${instances[1]!.guid};`);
  });

  it("with nothing running, removes every host resource of the cell: the host is as before the cell existed", async () => {
    process.kill(instances[1]!.pid, "SIGKILL");
    await gone(instances[1]!.pid);
    const r = await teardown();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`cell ${options.name} torn down (remains of 2 stopped containers removed)`);
    expect(await snapshot()).toEqual(pristine);
    expect(existsSync(options.stateDir)).toBe(false);
    // ip_forward is back as it was unless another Berth table (another cell on this machine) still needs it.
    if ((await berthTables()).length === 0) expect((await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim()).toBe(forwardingBefore);
  });

  it("a second run succeeds and changes nothing", async () => {
    const r = await teardown();
    expect(r.code).toBe(0);
    expect(await snapshot()).toEqual(pristine);
  });

  it("keeps files in the state dir that are not the agent's, and the dir with them", async () => {
    await mkdir(options.stateDir, { recursive: true });
    await writeFile(join(options.stateDir, "agent.log"), "log\n");
    await writeFile(join(options.stateDir, "cell.json"), JSON.stringify({ name: options.name }));
    await mkdir(join(options.stateDir, "layers"));
    const r = await teardown();
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`left in ${options.stateDir}: agent.log`);
    expect(existsSync(join(options.stateDir, "layers"))).toBe(false);
    await rm(options.stateDir, { recursive: true });
  });

  it("refuses a state dir registered under another cell's name, and bad flags, with clear errors", async () => {
    await mkdir(options.stateDir, { recursive: true });
    await writeFile(join(options.stateDir, "cell.json"), JSON.stringify({ guid: "g", name: "someone-else", credential: "c", api_url: "http://x" }));
    const other = await teardown();
    expect(other.code).toBe(1);
    expect(other.stderr).toContain(`${options.stateDir} belongs to cell "someone-else", not "${options.name}"`);
    expect(existsSync(join(options.stateDir, "cell.json"))).toBe(true);
    await writeFile(join(options.stateDir, "cell.json"), "{not json");
    expect((await teardown()).stderr).toContain("cell.json is unreadable: it names no cell");
    await rm(options.stateDir, { recursive: true });
    // A dir no agent marked (a mistyped --state-dir): its containers/ is not ours to delete.
    const foreign = join(options.stateDir, "containers", "keep.txt");
    await mkdir(join(options.stateDir, "containers"), { recursive: true });
    await writeFile(foreign, "not the cell's");
    const unmarked = await teardown();
    expect(unmarked.code).toBe(1);
    expect(unmarked.stderr).toContain(`${options.stateDir} has no cell.json nor rootfs/owner.json, so it is no cell's state dir; nothing removed (it holds containers)`);
    expect(await readFile(foreign, "utf8")).toBe("not the cell's");
    await rm(options.stateDir, { recursive: true });
    const relative = await teardownAgentCell({ name: options.name, stateDir: "relative/dir" });
    expect(relative).toMatchObject({ code: 1, stderr: "teardown: agent config: state_dir must be an absolute path\n" });
    const badName = await teardownAgentCell({ name: "Bad Name", stateDir: options.stateDir });
    expect(badName.code).toBe(1);
    expect(badName.stderr).toContain("agent config: name must be 1-23 of a-z, 0-9, '-'");
  });
});
