/**
 * The agent protocol end to end: a cell agent killed with -9 re-adopts its
 * containers without restarting them; an instance that died meanwhile is
 * reported and replaced, and so is one the killed agent never recorded (it
 * is stopped at the restart); with the control plane gone, everything keeps
 * serving and the agent catches up when it returns.
 */
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { berthCli } from "../support/cli";
import { controlPlaneSecrets, freePort, startControlPlane, type ControlPlane } from "../support/control-plane";
import { freeContainerCidr, makeCellAddress, type CellAddress } from "../support/netns";
import { descendants, processTable, stillRunning } from "../support/procs";
import { adminCall, enrollmentToken, eventually, getVia, registerRouter, startAgentProcess, startRouterProcess, decommissionAgentCell, keptInstances, type Daemon } from "../support/stack";

const registry = inject("registry");
const secrets = controlPlaneSecrets();
let cp: ControlPlane;
let cpPort: number;
let persistDir: string;
let cell: CellAddress;
let agent: Daemon;
let router: Daemon & { port: number };
let home: string;
let stateDir: string;
let agentOptions: Parameters<typeof startAgentProcess>[0];

const { ok, intoNewSpace } = berthCli(() => home);

const startCp = () => startControlPlane({ port: cpPort, persistDir, ...secrets, vars: { LONG_POLL_HOLD_MS: "5000" } });

/** instance guid → container init pid, from the runtime's state files. */
async function containerPids(): Promise<Map<string, number>> {
  const dir = join(stateDir, "containers");
  const out = new Map<string, number>();
  for (const id of await readdir(dir).catch(() => [] as string[])) {
    const state = JSON.parse(await readFile(join(dir, id, "state.json"), "utf8").catch(() => "null")) as { pid: number } | null;
    if (state) out.set(id, state.pid);
  }
  return out;
}

const serving = async () => (await getVia(router.port, "keep.apps.localhost")).status === 200;

async function runningCount(): Promise<number> {
  const app = JSON.parse(await ok("app", "keep", "--json")) as { instances: { state: string }[] };
  return app.instances.filter((i) => i.state === "RUNNING").length;
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "berth-e2e-home-"));
  persistDir = await mkdtemp(join(tmpdir(), "berth-e2e-d1-"));
  cpPort = await freePort();
  cp = await startCp();
  cell = await makeCellAddress();
  stateDir = await mkdtemp(join(tmpdir(), "berth-e2e-cell-"));
  agentOptions = {
    apiUrl: cp.url, enrollmentToken: await enrollmentToken(cp, "cell"), name: `restart-${process.pid}`,
    address: cell.address, stateDir, containerCidr: await freeContainerCidr(), portMin: 43000, portMax: 43999,
  };
  agent = await startAgentProcess(agentOptions);
  router = await startRouterProcess(cp.url, await registerRouter(cp, `router-r-${process.pid}`), join(stateDir, "router.log"));
  await adminCall(cp, "PATCH", "/v3/admin/docker_registry_access", { insecure_registries: [registry.host] });
  await adminCall(cp, "PATCH", "/v3/feature_flags/diego_docker", { enabled: true });
  await intoNewSpace(cp.url, secrets.adminToken, "ops");
  await ok("push", "keep", "-o", `${registry.host}/httpd:latest`, "-i", "2", "-m", "32M", "-k", "32M");
  await eventually("2 running instances", async () => ((await runningCount()) === 2 ? true : undefined), 120_000);
}, 300_000);

afterAll(async () => {
  await ok("delete", "keep", "-f").catch(() => undefined);
  await eventually("the cell to stop its containers", async () => ((await keptInstances(stateDir)) === 0 ? true : undefined)).catch(() => undefined);
  await router?.kill();
  await agent?.kill();
  await cp?.stop();
  await cell?.remove();
  // Decommission the cell (docs/deploy.md): the run leaves no table, mount, cgroup or loop device behind.
  if (agentOptions) await decommissionAgentCell({ name: agentOptions.name, stateDir });
  for (const dir of [persistDir, home]) if (dir) await rm(dir, { recursive: true, force: true });
}, 120_000);

describe.sequential("cell agent and control plane failures", () => {
  it("kill -9 of the agent and a restart re-adopts every container without restarting it", async () => {
    const before = await containerPids();
    expect(before.size).toBe(2);
    await agent.kill("SIGKILL");
    expect(await serving()).toBe(true);
    agent = await startAgentProcess({ ...agentOptions, enrollmentToken: undefined });
    await eventually("the agent to report again", async () => {
      const log = await readFile(join(stateDir, "agent.log"), "utf8");
      return (log.match(/re-adopted running container/g) ?? []).length >= 2 ? true : undefined;
    });
    expect(await containerPids()).toEqual(before);
    expect(await runningCount()).toBe(2);
    expect(await serving()).toBe(true);
  }, 120_000);

  it("an instance that died while the agent was down is reported CRASHED and replaced", async () => {
    const before = await containerPids();
    await agent.kill("SIGKILL");
    const [victim, pid] = [...before][0]!;
    process.kill(pid, "SIGKILL");
    agent = await startAgentProcess({ ...agentOptions, enrollmentToken: undefined });
    await eventually("the dead instance reported", async () => {
      const log = await readFile(join(stateDir, "agent.log"), "utf8");
      // Gone before the new agent looked, or seen exiting right after it adopted the container.
      const reported = new RegExp(`"instance":"${victim}","state":"CRASHED","reason":"(instance exited while the cell agent was down|process was killed by signal SIGKILL)"`);
      return reported.test(log) ? true : undefined;
    });
    await eventually("two running again", async () => ((await runningCount()) === 2 ? true : undefined), 120_000);
    const after = await containerPids();
    expect(after.has(victim)).toBe(false);
    const survivor = [...before.keys()].find((k) => k !== victim)!;
    expect(after.get(survivor)).toBe(before.get(survivor));
  }, 180_000);

  it("an agent killed between a container's create and its state record: the restart stops that container and it is replaced", async () => {
    const before = await containerPids();
    await agent.kill("SIGKILL");
    const [orphan, pid] = [...before][0]!;
    const procs = descendants(await processTable(), pid);
    // What a kill in that window leaves: the container runs, its directory has no state.json.
    await rm(join(stateDir, "containers", orphan, "state.json"));
    agent = await startAgentProcess({ ...agentOptions, enrollmentToken: undefined });
    await eventually("the unrecorded container stopped", async () => {
      const log = await readFile(join(stateDir, "agent.log"), "utf8");
      return new RegExp(`"instance":"${orphan}".*"msg":"stopped an unrecorded container`).test(log) ? true : undefined;
    });
    expect(await stillRunning(procs)).toEqual([]);
    await eventually("two running again", async () => ((await runningCount()) === 2 ? true : undefined), 120_000);
    const after = await containerPids();
    expect(after.has(orphan)).toBe(false);
    const survivor = [...before.keys()].find((k) => k !== orphan)!;
    expect(after.get(survivor)).toBe(before.get(survivor));
  }, 180_000);

  it("with the control plane gone, containers keep serving; the agent catches up when it is back", async () => {
    const before = await containerPids();
    await cp.stop();
    const downFor = Number(process.env.BERTH_E2E_CP_DOWN_MS ?? 30_000);
    const until = Date.now() + downFor;
    while (Date.now() < until) {
      expect(await serving()).toBe(true);
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(await containerPids()).toEqual(before);
    cp = await startCp();
    await ok("scale", "keep", "-i", "3");
    await eventually("3 running after the control plane came back", async () => ((await runningCount()) === 3 ? true : undefined), 120_000);
    const after = await containerPids();
    for (const [id, pid] of before) expect(after.get(id)).toBe(pid);
  }, 240_000);
});
