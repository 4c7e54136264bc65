// An agent killed (SIGKILL) after the native create made a container but
// before the runtime wrote its state record leaves a container that runs,
// holds memory, a network namespace and a root filesystem, and is known to
// nobody. The next agent start must find it by its cgroups and stop it.
// A stand-in agent process (test/support/cell-child.ts) runs two httpd
// instances through the real driver; the record of one is deleted (what the
// kill in that window leaves) and the agent is killed with -9. The cell
// opened again, as a restarted agent opens it, stops the unrecorded one and
// removes its parts, and leaves the recorded one running for re-adoption.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { cellHostLayout } from "../../agent/cell/host-layout";
import { teardownCell } from "../../agent/cell/teardown";
import type { InstanceSpec } from "../../shared/protocol/instance";
import { httpdSpec, openTestCell, resolveHttpd, testCellScope, type TestCell, type TestCellOptions } from "../support/cell";
import { cellHostState } from "../support/cell-host";
import { descendants, processTable, stillRunning, type Proc } from "../support/procs";
import { freeContainerCidr, makeCellAddress, uniqueTag, type CellAddress } from "../support/netns";

const registry = inject("registry");

interface Instance {
  guid: string;
  pid: number;
}

let base: string;
let address: CellAddress;
let options: TestCellOptions;
let agent: ChildProcess;
let specs: InstanceSpec[];
const instances: Instance[] = [];
let restarted: TestCell | undefined;
/** The process table once the instances run. */
let instancesTable: Proc[] = [];

beforeAll(async () => {
  const httpd = await resolveHttpd(registry.host);
  base = await mkdtemp(join(tmpdir(), "berth-orphans-"));
  await chmod(base, 0o711); // the containers' mapped root users traverse it
  address = await makeCellAddress();
  const tag = uniqueTag(4);
  const min = 40000 + Math.floor(Math.random() * 20000);
  options = {
    name: `or-${tag}`, stateDir: join(base, "cell"), cgroupParent: `berth-or-${tag}`, cellAddress: address.address,
    containerCidr: await freeContainerCidr(), hostPorts: { min, max: min + 9 }, registryHost: registry.host,
  };
  specs = [httpdSpec(httpd), httpdSpec(httpd)];
  agent = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "../support/cell-child.ts")], {
    env: { ...process.env, BERTH_CELL: JSON.stringify(options), BERTH_SPECS: JSON.stringify(specs) },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: agent.stdout! })[Symbol.asyncIterator]();
  for (let next = await lines.next(); !next.done && next.value !== "ready"; next = await lines.next()) instances.push(JSON.parse(next.value) as Instance);
  expect(instances).toHaveLength(2);
  instancesTable = await processTable();
}, 120_000);

afterAll(async () => {
  if (agent?.exitCode === null && agent.signalCode === null) agent.kill("SIGKILL");
  // What a failed test left running: killing a container's init ends its pid namespace.
  const left = await stillRunning(instances.flatMap((i) => descendants(instancesTable, i.pid)));
  for (const i of instances) if (left.some((p) => p.pid === i.pid)) process.kill(i.pid, "SIGKILL");
  while ((await stillRunning(left)).length > 0) await new Promise((r) => setTimeout(r, 10));
  await restarted?.rootfs.close();
  await restarted?.network.dispose();
  if (options) await teardownCell({ name: options.name, state_dir: options.stateDir, cgroup_parent: options.cgroupParent });
  await address?.remove();
  if (base) await rm(base, { recursive: true, force: true });
});

describe("a container its agent never recorded", () => {
  it("an agent killed between the native create and the state record: the next start kills the container and removes its cgroups, network and rootfs", async () => {
    const [orphan, kept] = instances as [Instance, Instance];
    const paths = cellHostLayout({ name: options.name, state_dir: options.stateDir });
    // What a SIGKILL in the window leaves: the container's directory without state.json.
    await rm(join(paths.containers, orphan.guid, "state.json"));
    const exited = new Promise((r) => agent.once("exit", r));
    agent.kill("SIGKILL");
    await exited;
    const before = await cellHostState(testCellScope(options));
    expect(before.cgroups.filter((c) => c.endsWith(orphan.guid)).length).toBeGreaterThanOrEqual(3);
    const orphanProcs = descendants(instancesTable, orphan.pid);
    const keptProcs = descendants(instancesTable, kept.pid);
    expect(orphanProcs.length).toBeGreaterThanOrEqual(2); // berth-init and httpd

    restarted = await openTestCell(options);
    const stopped = await restarted.driver.stopOrphans();
    expect(stopped.map((o) => o.id)).toEqual([orphan.guid]);
    expect(stopped[0]!.pids).toContain(orphan.pid);
    expect(await stillRunning(orphanProcs)).toEqual([]);

    const after = await cellHostState(testCellScope(options));
    const mentions = (list: string[], guid: string) => list.filter((x) => x.includes(guid));
    for (const part of [after.cgroups, after.mounts, after.files, after.processes, after.layerHolders]) expect(mentions(part, orphan.guid)).toEqual([]);
    expect(after.links).toHaveLength(before.links.length - 1);
    expect(existsSync(join(paths.containers, orphan.guid))).toBe(false);

    // The recorded container is untouched and re-adopted as before.
    expect(await stillRunning(keptProcs)).toEqual(keptProcs);
    expect(mentions(after.cgroups, kept.guid).length).toBeGreaterThanOrEqual(3);
    const adopted = await restarted.driver.recover(specs.find((s) => s.instance_guid === kept.guid)!);
    expect(adopted?.pid).toBe(kept.pid);
    await adopted!.destroy();
    expect(await stillRunning(keptProcs)).toEqual([]);
    // A second start finds nothing more.
    expect(await restarted.driver.stopOrphans()).toEqual([]);
  }, 120_000);
});
