/**
 * A container's root filesystem, as the host sees it: other host users (and
 * other containers' mapped roots) cannot browse it, and it is mounted
 * nosuid,nodev, so nothing in an image acts as a setuid binary or a device
 * node on the host's side. Real layers, real overlay mounts, as root.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { LayerCache } from "../../agent/images/layer-cache";
import type { ImageStore } from "../../agent/images/image-store";
import { RootfsManager, type Rootfs } from "../../agent/rootfs/rootfs-manager";
import { loopbackImageStore, resolveInstanceImage } from "../fixtures/layers/harness";

const registry = inject("registry");
const IDS = { hostId: 310000, size: 65536 };
let base: string;
let manager: RootfsManager;
let images: ImageStore;
let rootfs: Rootfs;

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), "berth-rootfs-exposure-"));
  // Every host user may reach the cell's directories: only the container's own may be closed.
  chmodSync(base, 0o755);
  manager = await RootfsManager.open(join(base, "rootfs"));
  images = loopbackImageStore(await LayerCache.open(join(base, "cache")));
  const layers = await images.pull(await resolveInstanceImage(`${registry.host}/httpd:latest`), { holder: "c-exposed" });
  rootfs = await manager.create("c-exposed", layers.map((l) => l.path), { ids: IDS, diskMb: 16 });
});
afterAll(async () => {
  await rootfs?.destroy();
  await manager?.close();
  rmSync(base, { recursive: true, force: true });
});

describe("a container's root filesystem on the host", () => {
  it("another host user cannot list or read a container's root filesystem", () => {
    const asNobody = (...argv: string[]) => spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", ...argv], { encoding: "utf8" });
    expect(asNobody("ls", rootfs.path).status).not.toBe(0);
    expect(asNobody("cat", join(rootfs.path, "etc/passwd")).status).not.toBe(0);
    // Root still reads it (the agent), so the check above is about permissions, not a missing path.
    expect(readFileSync(join(rootfs.path, "etc/passwd"), "utf8")).toContain("root");
  });

  it("a container's root filesystem is mounted nosuid,nodev on the host", () => {
    const line = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === rootfs.path);
    expect(line).toBeDefined();
    const options = line!.split(" ")[5]!.split(",");
    expect(options).toEqual(expect.arrayContaining(["nosuid", "nodev"]));
  });
});
