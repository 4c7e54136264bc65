// /etc/hosts, /etc/resolv.conf and /etc/hostname are made in the rootfs before
// pivot_root, while the host's tree is still the mount namespace's root. An
// image whose /etc files are absolute symlinks must not make the container's
// first process create files at those paths on the host: the links resolve
// inside the rootfs, where the runtime's files are then mounted.
import { existsSync, lchownSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRuntimeCell, type RuntimeCell } from "./support/runtime-cell";

let cell: RuntimeCell;
beforeAll(async () => {
  cell = await openRuntimeCell("etc-links");
});
afterAll(() => cell?.close());

describe("an image cannot make the runtime create files on the host", () => {
  for (const name of ["hosts", "resolv.conf", "hostname"]) {
    it(`an image whose /etc/${name} is an absolute symlink to a host path gets no file made there`, async () => {
      // World-writable on the host, so the container's mapped root could create the file.
      const hostPath = `/tmp/berth-hostile-${name}-${process.pid}`;
      rmSync(hostPath, { force: true });
      const { rootfs, hostId, spec } = await cell.prepare(`cat /etc/${name} > /dev/null && echo read`);
      symlinkSync(hostPath, join(rootfs, "etc", name));
      lchownSync(join(rootfs, "etc", name), hostId, hostId);
      try {
        const c = await cell.run(spec);
        expect(existsSync(hostPath)).toBe(false);
        expect(await c.exited).toMatchObject({ status: 0 });
        // The link's target inside the rootfs is where the runtime's file went.
        expect(existsSync(join(rootfs, hostPath))).toBe(true);
      } finally {
        rmSync(hostPath, { force: true });
      }
    });
  }
});
