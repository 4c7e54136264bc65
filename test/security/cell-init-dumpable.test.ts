// The container's PID 1 holds a descriptor of its io directory, which is on
// the host: through /proc/1/fd/N the app would reach the host's tree. The app
// is exec'd just before init becomes berth-init, so an app spinning on
// /proc/1/fd/* from its first instruction races that exec. Through 200
// starts it must never get the descriptor.
//
// What closes it: the runtime makes berth-init a binary the container's root
// cannot read (0711, host root's), which the kernel never makes dumpable.
// berth-init's own PR_SET_DUMPABLE 0 comes before it drops its capabilities,
// and while it holds more than the app, the kernel's capability check already
// refuses the app: so this suite passed before the change too. Without either
// (berth-init built without its prctl, binary readable) the spinner plants its
// file in every start; with the 0711 binary alone it never does.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRuntimeCell, type RuntimeCell } from "./support/runtime-cell";

const STARTS = 200;
let cell: RuntimeCell;
beforeAll(async () => {
  cell = await openRuntimeCell("dumpable");
});
afterAll(() => cell?.close());

describe("an app cannot take PID 1's descriptors", () => {
  it(`an image spinning on /proc/1/fd/* never opens the init's io directory through ${STARTS} starts`, async () => {
    const { rootfs, spec } = await cell.prepare("");
    const spinner = join(rootfs, "bin", "spin-proc-fd");
    execFileSync("cc", ["-static", "-O2", "-o", spinner, join(import.meta.dirname, "support/proc-fd-spinner.c")]);
    chmodSync(spinner, 0o755);
    const leaks: string[] = [];
    for (let i = 0; i < STARTS; i++) {
      const c = await cell.run({ ...spec, id: `${spec.id}-${i}`, command: { kind: "exec", argv: ["/bin/spin-proc-fd"] } });
      const io = dirname(cell.runtime.logPath(c.id, "stdout"));
      const out = readFileSync(join(io, "stdout.log"), "utf8");
      if (out || existsSync(join(io, "planted-by-app"))) leaks.push(`start ${i}: ${out.trim()}`);
      await c.destroy();
    }
    expect(leaks).toEqual([]);
  }, 600_000);
});
