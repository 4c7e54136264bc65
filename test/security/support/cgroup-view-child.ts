/**
 * Runs the cgroup view probes against a victim container on this process's
 * view of the host: started by the test under `unshare --mount` with cgroup2
 * alone at /sys/fs/cgroup, it is a pure cgroup v2 host. Each probe runs in a
 * network namespace the host made and in one of the container's own. Prints
 * one JSON line: the layout and, per probe and namespace, what it printed.
 */
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { CGROUP_VIEW_PROBES } from "./cgroup-view-probes";
import { openRuntimeCell } from "./runtime-cell";

const cell = await openRuntimeCell("cgroup-v2");
const netns = `berth-cgv2-${process.pid}`;
execFileSync("ip", ["netns", "add", netns]);
const results: Array<{ attack: string; netns: string; expected: string; output: string }> = [];
try {
  const victim = await cell.prepare("exec sleep 1000");
  const running = await cell.runtime.create(victim.spec);
  try {
    const target = { layout: cell.runtime.layout, parent: `berth-cgroup-v2-${process.pid}`, victimId: victim.spec.id, memoryMb: 64 };
    for (const probe of CGROUP_VIEW_PROBES) {
      for (const netnsPath of [`/run/netns/${netns}`, null]) {
        const { spec } = await cell.prepare(probe.script(target));
        const c = await cell.run({ ...spec, netnsPath, memoryMb: target.memoryMb });
        const output = await readFile(cell.runtime.logPath(c.id, "stdout"), "utf8");
        results.push({ attack: probe.attack, netns: netnsPath ? "host-made" : "own", expected: probe.expected(target), output });
      }
    }
  } finally {
    await running.destroy();
  }
} finally {
  await cell.close();
  execFileSync("ip", ["netns", "del", netns]);
}
process.stdout.write(`${JSON.stringify({ layout: cell.runtime.layout, results })}\n`);
