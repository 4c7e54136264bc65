/**
 * @module The real runtime for the hostile-app tests: a busybox rootfs per
 * test (mutable, so a test can make it hostile), a state dir and a private
 * cgroup parent, on a slot range of this test process's own.
 */
import { chmod, mkdtemp, rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { idRangeForSlot } from "../../../agent/runtime/ids";
import { Runtime, type Container } from "../../../agent/runtime/runtime";
import type { ContainerSpecInput } from "../../../agent/runtime/spec";
import { makeBusyboxRootfs } from "../../support/rootfs";

export interface RuntimeCell {
  runtime: Runtime;
  base: string;
  /** A fresh busybox rootfs on its own slot, and a spec running `script` in it. */
  prepare(script: string): Promise<{ rootfs: string; hostId: number; spec: ContainerSpecInput }>;
  /** Runs the spec to its end; the container (and its io dir) stays until close. */
  run(spec: ContainerSpecInput): Promise<Container>;
  close(): Promise<void>;
}

export async function openRuntimeCell(name: string): Promise<RuntimeCell> {
  const base = await mkdtemp(`/tmp/berth-${name}-`);
  // The container's mapped root must traverse the path to its rootfs and /etc files.
  await chmod(base, 0o711);
  const cgroupParent = `berth-${name}-${process.pid}`;
  const runtime = await Runtime.open({ stateDir: join(base, "state"), cgroupParent, cgroupRemoveTimeoutMs: 5000 });
  // Slots far from the agent's and the other suites', different per test process.
  const firstSlot = 40_000 + (process.pid % 5_000) * 4;
  let n = 0;
  const containers: Container[] = [];
  return {
    runtime,
    base,
    async prepare(script) {
      const slot = firstSlot + (n++ % 4);
      const hostId = idRangeForSlot(slot).hostId;
      const rootfs = join(base, `rootfs-${n}`);
      await makeBusyboxRootfs(rootfs, hostId);
      const spec: ContainerSpecInput = { id: `${name}-${process.pid}-${n}`, rootfs, slot, command: { kind: "shell", script }, env: {}, memoryMb: 64 };
      return { rootfs, hostId, spec };
    },
    async run(spec) {
      const c = await runtime.create(spec);
      containers.push(c);
      await c.exited;
      return c;
    },
    async close() {
      for (const c of containers) await c.destroy().catch(() => undefined);
      const layout = runtime.layout;
      for (const mount of [...Object.values(layout.v1), layout.v2?.mount]) if (mount) await rmdir(join(mount, cgroupParent)).catch(() => undefined);
      await rm(base, { recursive: true, force: true });
    },
  };
}
