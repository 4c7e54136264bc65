// Root filesystems as containers see them, as root on this kernel: overlay of
// idmapped cached layers (from the real fixture registry) plus a size-limited
// upper on a loop-mounted ext4; ENOSPC past disk_mb; teardown that leaves no
// mount, loop device or file behind; the chown fallback and the joined-lowerdir
// mount of kernels before 6.8, each forced on.
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { ImageStore } from "../../agent/images/image-store";
import { LayerCache } from "../../agent/images/layer-cache";
import { native } from "../../agent/native/index";
import { claimRoot } from "../../agent/rootfs/root-lock";
import { RootfsManager } from "../../agent/rootfs/rootfs-manager";
import type { InstanceImage } from "../../shared/protocol/image";
import { inUserns, loopbackImageStore, resolveInstanceImage } from "../fixtures/layers/harness";

const registry = inject("registry");
const IDS = { hostId: 300000, size: 65536 };
let base: string;
let manager: RootfsManager;
let images: ImageStore;
let layersImage: InstanceImage;

const mounted = (path: string) => readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === path);

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), "berth-rootfs-"));
  // The container's root (an unprivileged host uid) must reach the root filesystem's path.
  chmodSync(base, 0o755);
  manager = await RootfsManager.open(join(base, "rootfs"));
  images = loopbackImageStore(await LayerCache.open(join(base, "cache")));
  layersImage = await resolveInstanceImage(`${registry.host}/layers:latest`);
});
afterAll(async () => {
  await manager.close();
  rmSync(base, { recursive: true, force: true });
});

describe("RootfsManager", () => {
  it("uses idmapped mounts and lowerdir+ on this kernel", () => {
    expect(manager.idmapped).toBe(true);
    expect(manager.layerIdShift(IDS)).toBe(0);
    expect(manager.lowerdirAppend).toBe(true);
  });

  it("mounts the layers with deletions applied and ids mapped into the container's range", async () => {
    const layers = await images.pull(layersImage, { holder: "c-view" });
    const rootfs = await manager.create("c-view", layers.map((l) => l.path), { ids: IDS, diskMb: 16 });
    try {
      const p = (x: string) => join(rootfs.path, x);
      expect(readFileSync(p("data/keep.txt"), "utf8")).toBe("keep\n");
      expect(readFileSync(p("etc/motd"), "utf8")).toBe("second\n");
      expect(readFileSync(p("opaque/fresh.txt"), "utf8")).toBe("fresh\n");
      for (const gone of ["data/gone.txt", "data/dir", "opaque/old.txt"]) expect(existsSync(p(gone))).toBe(false);
      expect(readdirSync(p("opaque"))).toEqual(["fresh.txt"]);
      // From the host: container ids shifted by the base; on disk the layer keeps the tar's ids.
      expect(statSync(p("etc/passwd")).uid).toBe(IDS.hostId);
      expect(statSync(p("home/app")).uid).toBe(IDS.hostId + 1000);
      expect(statSync(join(layers[0]!.path, "home/app")).uid).toBe(1000);
      expect(statSync(rootfs.path).uid).toBe(IDS.hostId);

      // Inside the user namespace: the ids the image says, and root can write (copy-up into the upper).
      const r = await inUserns(IDS, ["sh", "-c", `stat -c '%u:%g %n' ${p("etc/passwd")} ${p("home/app")} && echo hi > ${p("etc/new")} && chown 1000:1000 ${p("etc/new")} && echo appended >> ${p("data/keep.txt")}`]);
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe(`0:0 ${p("etc/passwd")}\n1000:1000 ${p("home/app")}\n`);
      expect(statSync(p("etc/new")).uid).toBe(IDS.hostId + 1000);
      // The cached layer is untouched by the container's write.
      expect(readFileSync(join(layers[1]!.path, "data/keep.txt"), "utf8")).toBe("keep\n");
      expect(readFileSync(p("data/keep.txt"), "utf8")).toBe("keep\nappended\n");
    } finally {
      await rootfs.destroy();
    }
  });

  it("fails writes past disk_mb with ENOSPC and never fills the host, and reports the bytes written as disk usage", async () => {
    const layers = await images.pull(layersImage, { holder: "c-full" });
    const rootfs = await manager.create("c-full", layers.map((l) => l.path), { ids: IDS, diskMb: 8 });
    try {
      const empty = (await manager.diskUsage("c-full"))!;
      const r = await inUserns(IDS, ["dd", "if=/dev/zero", `of=${join(rootfs.path, "fill")}`, "bs=1M", "count=32"]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/No space left on device/);
      expect(statSync(join(rootfs.path, "fill")).size).toBeLessThanOrEqual(8 << 20);
      // Disk usage is the upper filesystem's: what the container wrote, counted up to its size.
      const full = (await manager.diskUsage("c-full"))!;
      expect(full - empty).toBeGreaterThanOrEqual(statSync(join(rootfs.path, "fill")).size - (64 << 10));
      expect(full).toBeLessThanOrEqual(8 << 20);
      expect(await manager.diskUsage("c-none")).toBeNull();
    } finally {
      await rootfs.destroy();
    }
  });

  it("destroys everything: mounts, loop device, files", async () => {
    const layers = await images.pull(layersImage, { holder: "c-gone" });
    const rootfs = await manager.create("c-gone", layers.map((l) => l.path), { ids: IDS, diskMb: 8 });
    const handle = JSON.parse(readFileSync(join(base, "rootfs/containers/c-gone/handle.json"), "utf8"));
    const loopsBefore = execFileSync("losetup", ["-j", handle.upper.image], { encoding: "utf8" });
    expect(loopsBefore).toContain(handle.upper.image);
    expect(mounted(rootfs.path)).toBe(true);

    await rootfs.destroy();
    for (const m of [rootfs.path, handle.upper.mountpoint, ...handle.lowers]) expect(mounted(m)).toBe(false);
    expect(existsSync(join(base, "rootfs/containers/c-gone"))).toBe(false);
    expect(existsSync(handle.upper.image)).toBe(false);
    expect(execFileSync("losetup", ["-a"], { encoding: "utf8" })).not.toContain(handle.upper.image);
    await rootfs.destroy(); // idempotent
    for (const l of layers) expect(existsSync(l.path)).toBe(true);
  });

  it("keeps containers' filesystems across a restart and can destroy them afterwards", async () => {
    const root = join(base, "rootfs-restart");
    const before = await RootfsManager.open(root, { spares: 1 });
    const layers = await images.pull(layersImage, { holder: "c-restart" });
    const rootfs = await before.create("c-restart", layers.map((l) => l.path), { ids: IDS, diskMb: 8 });
    await before.prewarm(8);
    // The agent dies here (no close); a new one opens the same directory.
    const after = await RootfsManager.open(root, { spares: 0 });
    expect(await after.list()).toEqual(["c-restart"]);
    expect(mounted(rootfs.path)).toBe(true);
    expect(readFileSync(join(rootfs.path, "data/keep.txt"), "utf8")).toBe("keep\n");
    // Only the dead agent's spare was discarded: the container's upper remains.
    expect(readdirSync(join(root, "uppers")).filter((n) => n.endsWith(".img"))).toHaveLength(1);
    await after.destroy("c-restart");
    expect(mounted(rootfs.path)).toBe(false);
    expect(readdirSync(join(root, "uppers"))).toEqual([]);
    await after.close();
  });

  it("refuses a root another live agent process has open, and takes over one whose owner died", async () => {
    const root = join(base, "rootfs-owned");
    mkdirSync(root, { recursive: true });
    // A real other process stands for an agent that survived (a kill -9 of its wrapper only).
    const other = spawn("sleep", ["60"], { stdio: "ignore" });
    await new Promise((r) => other.once("spawn", r));
    await claimRoot(root, other.pid!);
    await expect(RootfsManager.open(root)).rejects.toThrow(`${root} is in use by process ${other.pid}`);
    other.kill("SIGKILL");
    await new Promise((r) => other.once("exit", r));
    const taken = await RootfsManager.open(root, { spares: 0 });
    expect(JSON.parse(readFileSync(join(root, "owner.json"), "utf8")).pid).toBe(process.pid);
    await taken.close();
  });

  it("leaves no container directory when no upper filesystem can be made, so the id can be retried", async () => {
    const layers = await images.pull(layersImage, { holder: "c-retry" });
    // 32 TiB is past ext4's file size limit (16 TiB): the sparse file cannot be sized.
    await expect(manager.create("c-retry", layers.map((l) => l.path), { ids: IDS, diskMb: 2 ** 25 })).rejects.toMatchObject({ code: "EFBIG" });
    expect(await manager.list()).not.toContain("c-retry");
    const rootfs = await manager.create("c-retry", layers.map((l) => l.path), { ids: IDS, diskMb: 8 });
    await rootfs.destroy();
  });

  it("refuses a second root filesystem for the same container and bad arguments", async () => {
    const layers = await images.pull(layersImage, { holder: "c-dup" });
    const rootfs = await manager.create("c-dup", layers.map((l) => l.path), { ids: IDS, diskMb: 8 });
    try {
      await expect(manager.create("c-dup", layers.map((l) => l.path), { ids: IDS, diskMb: 8 })).rejects.toMatchObject({ code: "EEXIST" });
    } finally {
      await rootfs.destroy();
    }
    await expect(manager.create("../x", [layers[0]!.path], { ids: IDS, diskMb: 8 })).rejects.toThrow(/invalid container id/);
    await expect(manager.create("c-root", [layers[0]!.path], { ids: { hostId: 0, size: 65536 }, diskMb: 8 })).rejects.toThrow(/never host root/);
    await expect(manager.create("c-tiny", [layers[0]!.path], { ids: IDS, diskMb: 1 })).rejects.toThrow(/disk_mb/);
    expect(await manager.list()).not.toContain("c-tiny");
  });

  it("falls back to layers extracted with shifted ids when idmapped mounts are off", async () => {
    const fallback = await RootfsManager.open(join(base, "rootfs-chown"), { idmappedMounts: false });
    const shift = fallback.layerIdShift(IDS);
    expect(shift).toBe(IDS.hostId);
    const layers = await images.pull(layersImage, { holder: "c-chown", idShift: shift });
    const rootfs = await fallback.create("c-chown", layers.map((l) => l.path), { ids: IDS, diskMb: 8 });
    try {
      expect(statSync(join(layers[0]!.path, "home/app")).uid).toBe(IDS.hostId + 1000);
      const r = await inUserns(IDS, ["stat", "-c", "%u:%g", join(rootfs.path, "home/app")]);
      expect(r.stdout).toBe("1000:1000\n");
    } finally {
      await rootfs.destroy();
      await fallback.close();
    }
  });

  // Kernels before 6.8 (Debian 12's 6.1, Ubuntu 22.04's 5.15): one colon-joined lowerdir.
  describe.each([
    ["idmapped lowers", true],
    ["lowers chowned (no idmapped mounts either)", false],
  ])("without lowerdir+, %s", (_label, idmappedMounts) => {
    let joined: RootfsManager;
    beforeAll(async () => {
      joined = await RootfsManager.open(join(base, `rootfs-joined-${idmappedMounts}`), { idmappedMounts, lowerdirAppend: false });
    });
    afterAll(() => joined.close());

    it("mounts the image with deletions applied and ids in the container's range", async () => {
      const holder = `c-joined-${idmappedMounts}`;
      const layers = await images.pull(layersImage, { holder, idShift: joined.layerIdShift(IDS) });
      const rootfs = await joined.create(holder, layers.map((l) => l.path), { ids: IDS, diskMb: 8 });
      try {
        expect(mounted(rootfs.path)).toBe(true);
        expect(readFileSync(join(rootfs.path, "etc/motd"), "utf8")).toBe("second\n");
        expect(existsSync(join(rootfs.path, "data/gone.txt"))).toBe(false);
        expect(statSync(join(rootfs.path, "home/app")).uid).toBe(IDS.hostId + 1000);
      } finally {
        await rootfs.destroy();
      }
      expect(mounted(rootfs.path)).toBe(false);
      expect(await joined.list()).not.toContain(holder);
    });

    it("stacks 127 layers (the most an image may have) under the page of mount options", async () => {
      const dirs = Array.from({ length: 127 }, (_, i) => {
        const d = join(base, `many-${idmappedMounts}`, `layer-with-a-long-name-to-show-links-keep-options-short-${i}`);
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, `f${i}`), String(i));
        writeFileSync(join(d, "top"), String(i));
        return d;
      });
      const rootfs = await joined.create(`c-many-${idmappedMounts}`, dirs, { ids: IDS, diskMb: 8 });
      try {
        expect(readdirSync(rootfs.path).filter((n) => n.startsWith("f"))).toHaveLength(127);
        // Bottom-most first: the last layer is on top.
        expect(readFileSync(join(rootfs.path, "top"), "utf8")).toBe("126");
      } finally {
        await rootfs.destroy();
      }
    });

    it("refuses more layers than a page of options holds, naming the limit, and leaves nothing", async () => {
      const dirs = Array.from({ length: 450 }, (_, i) => {
        const d = join(base, `too-many-${idmappedMounts}`, String(i));
        mkdirSync(d, { recursive: true });
        return d;
      });
      await expect(joined.create(`c-too-many-${idmappedMounts}`, dirs, { ids: IDS, diskMb: 8 })).rejects.toThrow(/450 layers: options over a page; Linux 6.8/);
      expect(await joined.list()).not.toContain(`c-too-many-${idmappedMounts}`);
    });
  });
});
