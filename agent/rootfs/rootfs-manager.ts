/**
 * @module A container's root filesystem: an overlay whose lower directories
 * are the cached layers, each bind-mounted read-only and idmapped into the
 * container's id range, and whose upper directory is a plain one (an
 * idmapped upper fails with EOVERFLOW) owned by the container's root, on a
 * loop filesystem of `disk_mb` (upper-pool.ts).
 *
 * Layers stay on disk with the ids their tars say; the idmapped mount shows
 * uid N as base+N. Kernels without idmapped mounts fall back to layers
 * extracted with shifted ids (`layerIdShift`), which costs a copy of every
 * layer per id range and a chown of every file: containerd measured a
 * busybox start at 5.3 s with chown against 0.12 s with idmapped mounts
 * (containerd #4734/#5888).
 *
 * The overlay takes one `lowerdir+` per layer (Linux ≥ 6.8); older kernels get
 * one colon-joined lowerdir of short names relative to the container's dir,
 * mounted from there, so even 127 layers stay under the page of mount data.
 *
 * Layout per container: `<root>/containers/<id>/{lower/<n>/, rootfs/, handle.json}`.
 * The handle lists what was mounted, so a restarted agent can still destroy it.
 */
import { chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdir, readFile, readdir, rm, statfs } from "node:fs/promises";
import { basename, join } from "node:path";
import { tmpdir } from "node:os";
import { z } from "zod";
import { native } from "../native/index";
import { checkIdRange, type IdRange } from "../runtime/ids";
import { claimRoot } from "./root-lock";
import { checkDiskMb, UpperPool, type UpperPoolOptions } from "./upper-pool";
import { UserNamespacePool } from "./userns-pool";

const handleSchema = z.object({
  version: z.literal(1),
  rootfs: z.string(),
  lowers: z.array(z.string()),
  upper: z.object({ mountpoint: z.string(), image: z.string() }),
});
type Handle = z.infer<typeof handleSchema>;

export interface RootfsOptions {
  /** The container's id range: its root is host uid/gid `ids.hostId`. */
  ids: IdRange;
  /** Size of the writable layer in MiB. */
  diskMb: number;
}

export interface Rootfs {
  /** The merged root filesystem, mounted. */
  path: string;
  destroy(): Promise<void>;
}

export interface RootfsManagerOptions extends UpperPoolOptions {
  /** Force the chown fallback (tests of kernels without idmapped mounts); probed when absent. */
  idmappedMounts?: boolean;
  /** Force the joined-lowerdir mount (tests of kernels before 6.8); probed when absent. */
  lowerdirAppend?: boolean;
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function ignoreNotMounted(err: unknown): void {
  const code = (err as { code?: string }).code;
  if (code !== "EINVAL" && code !== "ENOENT") throw err;
}

/** What this kernel's overlayfs can do, each tried for real in a scratch directory. */
export interface OverlayFeatures {
  /** An overlay mounts at all (the overlay module; a joined lowerdir). */
  overlay: boolean;
  /** One `lowerdir+` per layer through fsconfig (Linux ≥ 6.8). */
  lowerdirAppend: boolean;
  /** Overlay over idmapped lower layers (idmapped mounts 5.12, overlay on them 5.19). */
  idmappedLowers: boolean;
}

/** Without a user namespace pool (none can be made) idmapped lowers count as missing. */
export function probeOverlay(userns: UserNamespacePool | null): OverlayFeatures {
  const dir = mkdtempSync(join(tmpdir(), "berth-overlay-probe-"));
  const works = (fn: () => void) => {
    try {
      fn();
      return true;
    } catch {
      return false;
    }
  };
  const mountOver = (append: boolean, lowers: string[]) => {
    if (append) native.fsMountOverlay(join(dir, "m"), lowers.map((l) => join(dir, l)), "", "");
    else native.fsMountOverlayJoined(dir, join(dir, "m"), lowers, "", "");
    native.fsUnmount(join(dir, "m"), true);
  };
  try {
    for (const d of ["a", "b", "l", "m"]) mkdirSync(join(dir, d));
    const lowerdirAppend = works(() => mountOver(true, ["a", "b"]));
    const overlay = lowerdirAppend || works(() => mountOver(false, ["a", "b"]));
    let idmappedLowers = false;
    if (userns && overlay && works(() => native.fsMountIdmapped(join(dir, "a"), join(dir, "l"), userns.fdFor({ hostId: 100000, size: 65536 })))) {
      idmappedLowers = works(() => mountOver(lowerdirAppend, ["l", "b"]));
      native.fsUnmount(join(dir, "l"), true);
    }
    return { overlay, lowerdirAppend, idmappedLowers };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function readHandle(dir: string): Promise<Handle | null> {
  const text = await readFile(join(dir, "handle.json"), "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return null;
    throw err;
  });
  return text === null ? null : handleSchema.parse(JSON.parse(text));
}

export class RootfsManager {
  private readonly userns = new UserNamespacePool();
  readonly idmapped: boolean;
  readonly lowerdirAppend: boolean;

  private constructor(
    readonly root: string,
    private readonly uppers: UpperPool,
    opts: RootfsManagerOptions,
  ) {
    const probed = opts.idmappedMounts === undefined || opts.lowerdirAppend === undefined ? probeOverlay(this.userns) : null;
    this.idmapped = opts.idmappedMounts ?? probed!.idmappedLowers;
    this.lowerdirAppend = opts.lowerdirAppend ?? probed!.lowerdirAppend;
  }

  /**
   * Opens the manager at root; root filesystems of containers from a previous
   * run stay mounted. Refused while another live process has root open.
   */
  static async open(root: string, opts: RootfsManagerOptions = {}): Promise<RootfsManager> {
    await mkdir(join(root, "containers"), { recursive: true });
    await claimRoot(root);
    const inUse = new Set<string>();
    for (const id of await readdir(join(root, "containers"))) {
      const handle = await readHandle(join(root, "containers", id));
      if (handle) inUse.add(basename(handle.upper.mountpoint));
    }
    const uppers = await UpperPool.open(join(root, "uppers"), inUse, opts);
    return new RootfsManager(root, uppers, opts);
  }

  /** How much the image store must shift layer ids for this range: 0 with idmapped mounts. */
  layerIdShift(ids: IdRange): number {
    return this.idmapped ? 0 : ids.hostId;
  }

  /** Prepares upper filesystems of this size ahead of time. */
  prewarm(diskMb: number): Promise<void> {
    return this.uppers.prewarm(diskMb);
  }

  /**
   * Mounts the root filesystem of `containerId` over `layers` (cached layer
   * directories, bottom-most first, from ImageStore.pull).
   */
  async create(containerId: string, layers: readonly string[], opts: RootfsOptions): Promise<Rootfs> {
    if (!CONTAINER_ID.test(containerId)) throw new TypeError(`invalid container id ${JSON.stringify(containerId)}`);
    checkIdRange(opts.ids);
    checkDiskMb(opts.diskMb);
    if (layers.length === 0) throw new TypeError("a root filesystem needs at least one layer");
    const dir = join(this.root, "containers", containerId);
    await mkdir(dir, { mode: 0o700 }); // fails if the container already has one
    // Not browsable by other host users (nor other containers' mapped roots); the container's own root still traverses it.
    chownSync(dir, opts.ids.hostId, opts.ids.hostId);
    let upper;
    try {
      upper = await this.uppers.take(opts.diskMb);
    } catch (err) {
      // Nothing is mounted yet: drop the directory so a retry of this id can start.
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    const handle: Handle = { version: 1, rootfs: join(dir, "rootfs"), lowers: [], upper: { mountpoint: upper.mountpoint, image: upper.image } };
    // From here on, plain synchronous syscalls of microseconds each: queueing
    // them on libuv's threadpool behind running pulls would cost more than they take.
    try {
      const upperDir = join(upper.mountpoint, "upper");
      const workDir = join(upper.mountpoint, "work");
      mkdirSync(upperDir, { mode: 0o755 });
      mkdirSync(workDir, { mode: 0o700 });
      // The overlay root takes the upper directory's owner: the container's root.
      chownSync(upperDir, opts.ids.hostId, opts.ids.hostId);

      let lowers = [...layers];
      // lower/<n> in the container's dir: the idmapped mount of layer n, or, for
      // a joined lowerdir without idmapping, a link to it (short names keep
      // the mount options under a page).
      const names = layers.map((_, i) => `lower/${i}`);
      if (this.idmapped) {
        handle.lowers = names.map((n) => join(dir, n));
        // The handle names every mount before it exists, so a crash in between is still torn down.
        writeFileSync(join(dir, "handle.json"), JSON.stringify(handle));
        const fd = this.userns.fdFor(opts.ids);
        for (const [i, layer] of layers.entries()) {
          mkdirSync(handle.lowers[i]!, { recursive: true });
          native.fsMountIdmapped(layer, handle.lowers[i]!, fd);
        }
        lowers = [...handle.lowers];
      } else {
        writeFileSync(join(dir, "handle.json"), JSON.stringify(handle));
        if (!this.lowerdirAppend) {
          mkdirSync(join(dir, "lower"));
          for (const [i, layer] of layers.entries()) symlinkSync(layer, join(dir, names[i]!));
        }
      }
      mkdirSync(handle.rootfs);
      if (this.lowerdirAppend) native.fsMountOverlay(handle.rootfs, lowers.reverse(), upperDir, workDir);
      else native.fsMountOverlayJoined(dir, handle.rootfs, names.reverse(), upperDir, workDir);
    } catch (err) {
      await this.teardown(dir, handle).catch(() => undefined);
      throw err;
    }
    return { path: handle.rootfs, destroy: () => this.destroy(containerId) };
  }

  /** Unmounts and deletes everything of `containerId` (idempotent; works after an agent restart). */
  async destroy(containerId: string): Promise<void> {
    const dir = join(this.root, "containers", containerId);
    const handle = await readHandle(dir);
    if (handle) await this.teardown(dir, handle);
    else await rm(dir, { recursive: true, force: true });
  }

  /**
   * Bytes the container has written: what its upper filesystem uses (as df
   * counts it, ext4's own metadata included), or null when it has none.
   */
  async diskUsage(containerId: string): Promise<number | null> {
    const handle = await readHandle(join(this.root, "containers", containerId));
    if (!handle) return null;
    const s = await statfs(handle.upper.mountpoint);
    return (s.blocks - s.bfree) * s.bsize;
  }

  /** Container ids with a root filesystem on disk (for re-adoption after a restart). */
  async list(): Promise<string[]> {
    return (await readdir(join(this.root, "containers"))).sort();
  }

  /** Unmounts the spare upper filesystems and drops the user namespace fds. */
  async close(): Promise<void> {
    await this.uppers.close();
    this.userns.close();
  }

  private async teardown(dir: string, handle: Handle): Promise<void> {
    for (const target of [handle.rootfs, ...handle.lowers]) {
      try {
        native.fsUnmount(target, false);
      } catch (err) {
        ignoreNotMounted(err);
      }
    }
    await this.uppers.discard(handle.upper);
    await rm(dir, { recursive: true, force: true });
  }
}
