/**
 * The image's /etc/passwd and /etc/group are read by the agent itself on a
 * start (to resolve the user), so a hostile image must not be able to stall
 * it there: a FIFO in their place (the layer extractor creates FIFOs) fails
 * that start with a clear error instead of blocking the agent's thread on an
 * open that waits for a writer; a file too large to read at once is refused
 * before it is read.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
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

  it("refuses an /etc/group of more than 1 MiB without reading it", async () => {
    const rootfs = join(base!, "rootfs-big");
    await mkdir(join(rootfs, "etc"), { recursive: true });
    await writeFile(join(rootfs, "etc", "passwd"), "app:x:1000:1000::/:/bin/sh\n");
    // Sparse: 2 GiB that cost no disk, and would cost the agent's memory and thread if read.
    await writeFile(join(rootfs, "etc", "group"), "");
    await truncate(join(rootfs, "etc", "group"), 2 ** 31);
    await expect(
      runtime!.create({ id: `etc-big-${process.pid}`, rootfs, slot: 31_000 + (process.pid % 1000), command: { kind: "exec", argv: ["/bin/true"] }, env: {}, memoryMb: 64, user: "app" }),
    ).rejects.toThrow("cannot read /etc/group of the rootfs: 2147483648 bytes, more than the 1048576 allowed");
  });
});
