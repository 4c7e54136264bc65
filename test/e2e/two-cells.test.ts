/**
 * Convergence end to end on two cells: `wrangler dev` on an address of the
 * test's own, two agents each in its own network namespace (entered with
 * `nsenter --net` only) with their own state directory and cgroup parent, a
 * registry serving the fixtures on that address, and the router. Spreading,
 * scaling, crash backoff, the diego_docker flag, a cell killed with -9, a
 * drained cell and its decommissioning, with the seconds each convergence
 * took printed.
 */
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { berthCli } from "../support/cli";
import { startControlPlane, type ControlPlane } from "../support/control-plane";
import { freeContainerCidr, makeCellAddress, makeTestHost, type CellAddress, type TestHost } from "../support/netns";
import { startRegistry, type TestRegistry } from "../support/registry";
import { adminCall, enrollmentToken, eventually, getVia, registerRouter, startAgentProcess, startRouterProcess, decommissionAgentCell, keptInstances, teardownAgentCell, type AgentOptions, type Daemon } from "../support/stack";

const fixtures = inject("registry");
const BACKOFF_BASE_MS = 4000;
const FIXTURE_PAGE = "<h1>berth httpd fixture</h1>";

interface Cell {
  name: string;
  host: TestHost;
  options: AgentOptions;
  agent: Daemon;
  guid?: string;
}

let cpAddress: CellAddress;
let cp: ControlPlane;
let cellRegistry: TestRegistry;
let router: Daemon & { port: number };
let home: string;
const cells: Cell[] = [];
let image: string;

const { berth, ok, intoNewSpace } = berthCli(() => home);

interface InstanceView {
  index: number;
  state: string;
  host?: string;
}

const instancesOf = async (app: string) => (JSON.parse(await ok("app", app, "--json")) as { instances: InstanceView[] }).instances;

const running = (list: InstanceView[]) => list.filter((i) => i.state === "RUNNING");

/** Processes in a cell's containers: everything in its cgroup parent on the pids hierarchy. */
async function containerProcesses(cell: Cell): Promise<number> {
  const walk = async (dir: string): Promise<number> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    let n = (await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "")).split("\n").filter(Boolean).length;
    for (const e of entries) if (e.isDirectory()) n += await walk(join(dir, e.name));
    return n;
  };
  return walk(`/sys/fs/cgroup/pids/berth-${cell.name}`);
}

const instanceDirs = (cell: Cell) => keptInstances(cell.options.stateDir);

const seconds = (since: number) => ((Date.now() - since) / 1000).toFixed(1);

async function startCell(name: string, zone: string): Promise<Cell> {
  const host = await makeTestHost();
  const options: AgentOptions = {
    apiUrl: cp.url, enrollmentToken: await enrollmentToken(cp, "cell"), name, zone, address: host.address,
    stateDir: await mkdtemp(join(tmpdir(), `berth-e2e-${name}-`)), containerCidr: await freeContainerCidr(),
    portMin: 44000, portMax: 44999, netns: host.netnsPath,
  };
  return { name, host, options, agent: await startAgentProcess(options) };
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "berth-e2e-home-"));
  // The control plane and the registry listen on an address of the test's own
  // in the host namespace, which the cells' namespaces reach through their links.
  cpAddress = await makeCellAddress();
  cp = await startControlPlane({
    host: cpAddress.address,
    vars: { LONG_POLL_HOLD_MS: "5000", HEARTBEAT_TTL_MS: "4000", CRASH_BACKOFF_BASE_MS: String(BACKOFF_BASE_MS) },
  });
  cellRegistry = await startRegistry({ storageDir: fixtures.storageDir, listen: cpAddress.address });
  image = `${cellRegistry.host}/httpd:latest`;
  cells.push(await startCell(`two-a-${process.pid}`, "z1"), await startCell(`two-b-${process.pid}`, "z2"));
  router = await startRouterProcess(cp.url, await registerRouter(cp, `router-two-${process.pid}`), join(home, "router.log"));
  await adminCall(cp, "PATCH", "/v3/admin/docker_registry_access", { insecure_registries: [cellRegistry.host] });
  await adminCall(cp, "PATCH", "/v3/feature_flags/diego_docker", { enabled: true });
  await intoNewSpace(cp.url, cp.adminToken, "conv");
  const listed = await eventually("both cells heartbeating", async () => {
    const { resources } = await adminCall<{ resources: { guid: string; name: string; state: string; last_heartbeat_at: string | null }[] }>(cp, "GET", "/v3/cells");
    const ours = cells.map((c) => resources.find((r) => r.name === c.name && r.state === "ACTIVE" && r.last_heartbeat_at));
    return ours.every(Boolean) ? ours : undefined;
  });
  cells.forEach((c, i) => (c.guid = listed[i]!.guid));
}, 300_000);

afterAll(async () => {
  for (const app of ["spread", "crashy"]) await berth("delete", app, "-f");
  const live = cells.filter((c) => c.agent.process.exitCode === null && c.agent.process.signalCode === null);
  await eventually("the cells to stop their containers", async () => ((await Promise.all(live.map(instanceDirs))).every((n) => n === 0) ? true : undefined)).catch(() => undefined);
  await router?.kill();
  for (const c of cells) {
    await c.agent.kill();
    await decommissionAgentCell({ name: c.name, stateDir: c.options.stateDir, netns: c.host.netnsPath });
    await c.host.remove();
  }
  await cp?.stop();
  await cellRegistry?.stop();
  await cpAddress?.remove();
  await rm(home, { recursive: true, force: true });
}, 120_000);

describe.sequential("convergence on two cells", () => {
  it("push spreads instances over both cells, each serving through the router", async () => {
    await ok("push", "spread", "-o", image, "-i", "2", "-m", "32M", "-k", "32M");
    const list = await eventually("2 running on two cells", async () => {
      const l = running(await instancesOf("spread"));
      return l.length === 2 && new Set(l.map((i) => i.host)).size === 2 ? l : undefined;
    });
    expect(new Set(list.map((i) => i.host))).toEqual(new Set(cells.map((c) => c.host.address)));
    for (let i = 0; i < 4; i++) expect((await getVia(router.port, "spread.apps.localhost")).body).toContain(FIXTURE_PAGE);
  }, 180_000);

  it("scale 1 → 4 → 2: instances follow, spread over both cells at 4, the extra ones stopped", async () => {
    await ok("scale", "spread", "-i", "1");
    await eventually("1 instance", async () => {
      const l = await instancesOf("spread");
      const procs = (await Promise.all(cells.map(instanceDirs))).reduce((a, b) => a + b, 0);
      return l.length === 1 && running(l).length === 1 && procs === 1 ? true : undefined;
    });
    await ok("scale", "spread", "-i", "4");
    const four = await eventually("4 running", async () => {
      const l = running(await instancesOf("spread"));
      return l.length === 4 ? l : undefined;
    }, 120_000);
    const perCell = cells.map((c) => four.filter((i) => i.host === c.host.address).length);
    expect(perCell).toEqual([2, 2]);
    await ok("scale", "spread", "-i", "2");
    await eventually("2 running, indices 0 and 1, no container left for 2 and 3", async () => {
      const l = await instancesOf("spread");
      const procs = (await Promise.all(cells.map(instanceDirs))).reduce((a, b) => a + b, 0);
      return running(l).length === 2 && l.map((i) => i.index).join() === "0,1" && procs === 2 ? true : undefined;
    });
  }, 240_000);

  it("a crashing image restarts at once twice, then backs off 4 s, then 8 s", async () => {
    // Starts, passes its process check, exits 3 half a second later.
    await berth("push", "crashy", "-o", image, "-c", "sleep 0.5; exit 3", "-u", "process", "-m", "16M", "-k", "16M");
    const app = JSON.parse(await ok("app", "crashy", "--json")) as { app: { guid: string } };
    type Crash = { data: { crash_count: number; crash_timestamp: number; exit_status: number; exit_description: string } };
    const crashes = await eventually("five crashes", async () => {
      const { resources } = await adminCall<{ resources: Crash[] }>(cp, "GET", `/v3/audit_events?types=app.crash&target_guids=${app.app.guid}&per_page=50`);
      return resources.length >= 5 ? resources.map((r) => r.data).sort((a, b) => a.crash_count - b.crash_count).slice(0, 5) : undefined;
    }, 120_000, 500);
    expect(crashes.map((c) => c.crash_count)).toEqual([1, 2, 3, 4, 5]);
    expect(crashes.map((c) => [c.exit_status, c.exit_description])).toEqual(Array(5).fill([3, "process exited with status 3"]));
    const gaps = crashes.slice(1).map((c, i) => c.crash_timestamp - crashes[i]!.crash_timestamp);
    console.log(`crash gaps (ms): ${gaps.join(", ")} (backoff base ${BACKOFF_BASE_MS} ms)`);
    // Each gap = the backoff + a start + the 0.5 s the command runs.
    expect(gaps[0]).toBeLessThan(BACKOFF_BASE_MS);
    expect(gaps[1]).toBeLessThan(BACKOFF_BASE_MS);
    expect(gaps[2]).toBeGreaterThanOrEqual(BACKOFF_BASE_MS);
    expect(gaps[3]).toBeGreaterThanOrEqual(2 * BACKOFF_BASE_MS);
    const [waiting] = await instancesOf("crashy");
    expect(waiting!.state).toBe("CRASHED");
    await ok("delete", "crashy", "-f");
  }, 180_000);

  it("diego_docker off stops every docker instance on both cells; on brings them back", async () => {
    const before = await Promise.all(cells.map(containerProcesses));
    expect(before[0]! + before[1]!).toBeGreaterThan(0);
    const t0 = Date.now();
    await adminCall(cp, "PATCH", "/v3/feature_flags/diego_docker", { enabled: false });
    await eventually("no container process on either cell", async () => ((await Promise.all(cells.map(containerProcesses))).every((n) => n === 0) ? true : undefined), 60_000, 50);
    console.log(`diego_docker off → last container process gone on both cells: ${seconds(t0)} s`);
    // Stats say DOWN once the cells have reported the stops (just after the last process went).
    await eventually("stats to show both instances DOWN", async () => ((await instancesOf("spread")).map((i) => i.state).join() === "DOWN,DOWN" ? true : undefined), 30_000, 100);
    expect(JSON.parse(await ok("app", "spread", "--json")).app.state).toBe("STARTED");
    expect((await getVia(router.port, "spread.apps.localhost")).status).toBe(503);

    const t1 = Date.now();
    await adminCall(cp, "PATCH", "/v3/feature_flags/diego_docker", { enabled: true });
    const back = await eventually("2 running again", async () => {
      const l = running(await instancesOf("spread"));
      return l.length === 2 ? l : undefined;
    }, 120_000, 100);
    console.log(`diego_docker on → 2 instances RUNNING: ${seconds(t1)} s`);
    expect((await getVia(router.port, "spread.apps.localhost")).body).toContain(FIXTURE_PAGE);
    // Placed afresh on two empty cells: one each.
    expect(new Set(back.map((i) => i.host)).size).toBe(2);
  }, 240_000);

  it("kill -9 of one agent: its instances run on the other cell", async () => {
    const [victim, survivor] = cells;
    const t0 = Date.now();
    await victim!.agent.kill("SIGKILL");
    await eventually("every instance RUNNING on the surviving cell", async () => {
      const l = await instancesOf("spread");
      return l.length === 2 && l.every((i) => i.state === "RUNNING" && i.host === survivor!.host.address) ? true : undefined;
    }, 120_000, 100);
    console.log(`kill -9 of ${victim!.name} → its instances RUNNING on ${survivor!.name}: ${seconds(t0)} s`);
    expect((await getVia(router.port, "spread.apps.localhost")).body).toContain(FIXTURE_PAGE);

    // Back again, the cell stops the containers it ran while it was gone (they were replaced).
    victim!.agent = await startAgentProcess({ ...victim!.options, enrollmentToken: undefined });
    await eventually("the returning cell to stop its replaced containers", async () => ((await containerProcesses(victim!)) === 0 && (await instanceDirs(victim!)) === 0 ? true : undefined), 120_000);
  }, 300_000);

  it("draining a cell moves its instances without a moment with none RUNNING", async () => {
    const [target, drained] = cells;
    // After the kill -9, every instance runs on the second cell: drain it.
    const start = await instancesOf("spread");
    expect(start.every((i) => i.host === drained!.host.address)).toBe(true);
    let minRunning = Infinity;
    const failures: string[] = [];
    const t0 = Date.now();
    await ok("drain-cell", drained!.name);
    await eventually("every instance RUNNING on the other cell and the drained cell empty", async () => {
      const [l, page] = await Promise.all([instancesOf("spread"), getVia(router.port, "spread.apps.localhost")]);
      minRunning = Math.min(minRunning, running(l).length);
      if (page.status !== 200) failures.push(`${Date.now() - t0} ms: ${page.status} ${String(page.headers["x-berth-router-error"] ?? "")}`);
      const moved = l.length === 2 && l.every((i) => i.state === "RUNNING" && i.host === target!.host.address);
      return moved && (await instanceDirs(drained!)) === 0 ? true : undefined;
    }, 120_000, 100);
    console.log(`drain ${drained!.name} → instances RUNNING on ${target!.name}, drained cell empty: ${seconds(t0)} s; fewest RUNNING meanwhile: ${minRunning}`);
    expect(minRunning).toBeGreaterThanOrEqual(1);
    expect(failures).toEqual([]);
  }, 240_000);

  it("a drained cell is decommissioned: agent stopped, host torn down, cell deleted", async () => {
    const drained = cells[1]!;
    const refused = await berth("delete-cell", drained.name);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("is still heartbeating: drain it, stop its agent, then delete it");
    await drained.agent.kill();
    const t = await teardownAgentCell({ name: drained.name, stateDir: drained.options.stateDir, netns: drained.host.netnsPath });
    expect(t.code).toBe(0);
    expect(await containerProcesses(drained)).toBe(0);
    // Gone once its presence (TTL 4 s) has expired.
    await eventually("the cell to be deleted", async () => ((await berth("delete-cell", drained.guid!)).code === 0 ? true : undefined), 30_000, 500);
    expect(JSON.parse(await ok("cells", "--json")).map((c: { guid: string }) => c.guid)).not.toContain(drained.guid);
    expect((await getVia(router.port, "spread.apps.localhost")).body).toContain(FIXTURE_PAGE);
  }, 60_000);
});
