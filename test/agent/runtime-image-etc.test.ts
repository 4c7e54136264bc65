/**
 * The image's /etc/passwd and /etc/group are read by the agent itself on a
 * start (to resolve the user), so a hostile image must not be able to stall
 * it there: a FIFO in their place (the layer extractor creates FIFOs) fails
 * that start with a clear error instead of blocking the agent's thread on an
 * open that waits for a writer.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Runtime } from "../../agent/runtime/runtime";

describe("Runtime.create with an image whose /etc files are not regular files", () => {
  let base: string | undefined;
  let runtime: Runtime | undefined;
  const writers: ReturnType<typeof spawn>[] = [];

  afterAll(async () => {
    for (const w of writers) if (w.exitCode === null) w.kill("SIGKILL");
    await runtime?.removeCgroupParents();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("refuses a FIFO at /etc/passwd without waiting for a writer", async () => {
    base = await mkdtemp("/tmp/berth-runtime-etc-");
    const rootfs = join(base, "rootfs");
    await mkdir(join(rootfs, "etc"), { recursive: true });
    const fifo = join(rootfs, "etc", "passwd");
    execFileSync("mkfifo", [fifo]);
    // Without the guard the agent's thread blocks in open() until a writer comes: one comes
    // after a while so the test ends either way, and the start then goes on with what it wrote.
    writers.push(spawn("timeout", ["10", "sh", "-c", `sleep 1; echo 'app:x:1000:1000::/:/bin/sh' > ${fifo}`], { stdio: "ignore" }));
    runtime = await Runtime.open({ stateDir: join(base, "state"), cgroupParent: `berth-etc-${process.pid}` });
    await expect(
      runtime.create({ id: `etc-${process.pid}`, rootfs, slot: 30_000 + (process.pid % 1000), command: { kind: "exec", argv: ["/bin/true"] }, env: {}, memoryMb: 64, user: "app" }),
    ).rejects.toThrow(/\/etc\/passwd of the rootfs: not a regular file/);
  });
});
