// Containers of different tenants share the cell's cgroup hierarchies. Inside
// one, /sys/fs/cgroup must show that container's own cgroup only (as Docker's
// cgroup namespace and read-only cgroup mount do), /proc/self/cgroup must say
// "/", and /sys must be a read-only sysfs of the container's own network
// namespace: not the host's /sys with its interfaces and its debugfs, tracefs
// and cgroup mounts. Real containers, in a network namespace the host made
// (as the cell's network manager does) and in one of their own, on this
// host's cgroup layout and on cgroup2 alone.
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerCgroupPaths, type CgroupLayout } from "../../agent/runtime/cgroups";
import type { Container } from "../../agent/runtime/runtime";
import { CGROUP_VIEW_PROBES } from "./support/cgroup-view-probes";
import { openRuntimeCell, type RuntimeCell } from "./support/runtime-cell";

let cell: RuntimeCell;
let victim: Container;
let victimId: string;
const parent = `berth-cgroup-view-${process.pid}`;
const netnsNames: string[] = [];

/** A network namespace made by the host, as the cell's network manager makes them. */
function hostNetns(): string {
  const name = `berth-cgv-${process.pid}-${netnsNames.length}`;
  execFileSync("ip", ["netns", "add", name]);
  netnsNames.push(name);
  return `/run/netns/${name}`;
}

beforeAll(async () => {
  cell = await openRuntimeCell("cgroup-view");
  const { spec } = await cell.prepare("head -c 8m /dev/zero > /dev/shm/held; exec sleep 1000");
  victimId = spec.id;
  victim = await cell.runtime.create({ ...spec, netnsPath: hostNetns() });
});
afterAll(async () => {
  await victim?.destroy();
  await cell?.close();
  for (const name of netnsNames) execFileSync("ip", ["netns", "del", name]);
});

describe("a container sees its own cgroup only (this host's cgroup layout)", () => {
  it("the victim's cgroup files are there to steal on the host", () => {
    const files = containerCgroupPaths(cell.runtime.layout, parent, victimId).map((dir) => join(dir, "cgroup.procs"));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(existsSync(f)).toBe(true);
  });

  for (const probe of CGROUP_VIEW_PROBES) {
    for (const netns of ["host-made", "own"] as const) {
      it(`${probe.attack} (${netns} netns)`, async () => {
        const target = { layout: cell.runtime.layout, parent, victimId, memoryMb: 64 };
        const { spec } = await cell.prepare(probe.script(target));
        const c = await cell.run({ ...spec, netnsPath: netns === "host-made" ? hostNetns() : null, memoryMb: target.memoryMb });
        expect(await c.exited).toMatchObject({ status: 0 });
        expect(await readFile(cell.runtime.logPath(c.id, "stdout"), "utf8")).toBe(probe.expected(target));
      });
    }
  }
});

describe("a container sees its own cgroup only (cgroup2 alone)", () => {
  it("every probe, in a mount namespace where cgroup2 alone is at /sys/fs/cgroup", async () => {
    const child = join(import.meta.dirname, "support/cgroup-view-child.ts");
    const script = 'umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$0" --import tsx "$1"';
    const { stdout } = await promisify(execFile)("unshare", ["--mount", "--propagation", "private", "sh", "-c", script, process.execPath, child]);
    const { layout, results } = JSON.parse(stdout) as { layout: CgroupLayout; results: Array<{ attack: string; netns: string; expected: string; output: string }> };
    expect(layout.v1).toEqual({});
    expect(layout.v2?.mount).toBe("/sys/fs/cgroup");
    expect(results).toHaveLength(8);
    for (const r of results) expect({ attack: r.attack, netns: r.netns, output: r.output }).toEqual({ attack: r.attack, netns: r.netns, output: r.expected });
  });
});
