/**
 * @module Writable upper filesystems with a hard size limit. The kernel here
 * has no project quotas, so each container's upper directory lives on its
 * own ext4 filesystem in a sparse file of `disk_mb`, loop-mounted
 * (LOOP_CONFIGURE via the addon): writing past the limit fails with ENOSPC
 * inside the container and never fills the host. mkfs takes tens of
 * milliseconds, so a few filesystems per size are prepared ahead and handed
 * out at once; the pool refills in the background. Spares are kept for the
 * few sizes taken most recently only: a tenant cycling through disk_mb
 * values cannot make the cell hold loop devices and files for each.
 *
 * Layout: `<dir>/<id>.img` (the sparse file) mounted on `<dir>/<id>/`.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { native } from "../native/index";

export interface UpperFs {
  id: string;
  diskMb: number;
  /** Where the filesystem is mounted. */
  mountpoint: string;
  image: string;
}

export interface UpperPoolOptions {
  /** Filesystems kept ready per size. */
  spares?: number;
  /** Sizes spares are kept for: the most recently taken (default 4). */
  spareSizes?: number;
  /** Called when a background refill fails (it is retried on the next take). */
  onError?: (err: unknown) => void;
}

/**
 * ext4 without a journal (scratch space that dies with its container), no
 * reserved blocks (the container gets the whole `disk_mb`), lazy inode
 * tables so mkfs does not write the whole file.
 */
const MKFS_ARGS = ["-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "lazy_itable_init=1,nodiscard"];

/** ext4 needs a few MiB for its own metadata. */
export function checkDiskMb(diskMb: number): void {
  if (!Number.isInteger(diskMb) || diskMb < 4) throw new RangeError(`disk_mb must be an integer ≥ 4, got ${diskMb}`);
}

export class UpperPool {
  private readonly ready = new Map<number, UpperFs[]>();
  private readonly filling = new Map<number, Promise<void>>();
  private readonly spares: number;
  private readonly spareSizes: number;
  /** Sizes spares are kept for, most recently taken first. */
  private recentSizes: number[] = [];
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly opts: UpperPoolOptions,
  ) {
    this.spares = opts.spares ?? 2;
    this.spareSizes = opts.spareSizes ?? 4;
  }

  /**
   * Opens the pool. Filesystems a previous run left behind that no container
   * uses (`inUse`: their ids) were spares: they are unmounted and deleted.
   */
  static async open(dir: string, inUse: ReadonlySet<string>, opts: UpperPoolOptions = {}): Promise<UpperPool> {
    const pool = new UpperPool(dir, opts);
    await mkdir(dir, { recursive: true });
    for (const name of await readdir(dir)) {
      const id = name.replace(/\.img$/, "");
      if (!inUse.has(id)) await pool.discard({ mountpoint: join(dir, id), image: join(dir, `${id}.img`) });
    }
    return pool;
  }

  /** Keeps `spares` filesystems of this size ready from now on. */
  prewarm(diskMb: number): Promise<void> {
    return Promise.all([...this.touch(diskMb), this.refill(diskMb)]).then(() => undefined);
  }

  /** A mounted, empty filesystem of `diskMb`: a prepared one if there is one. */
  async take(diskMb: number): Promise<UpperFs> {
    checkDiskMb(diskMb);
    const fs = this.ready.get(diskMb)?.shift() ?? (await this.prepare(diskMb));
    for (const dropped of this.touch(diskMb)) dropped.catch((err) => this.opts.onError?.(err));
    // Refill once the caller's start has gone on: mkfs competes with it for the CPU.
    setImmediate(() => this.refill(diskMb).catch((err) => this.opts.onError?.(err)));
    return fs;
  }

  /** Unmounts (the loop device detaches itself) and deletes the filesystem. */
  async discard(fs: Pick<UpperFs, "mountpoint" | "image">): Promise<void> {
    try {
      native.fsUnmount(fs.mountpoint, false);
    } catch (err) {
      if ((err as { code?: string }).code !== "EINVAL" && (err as { code?: string }).code !== "ENOENT") throw err;
    }
    await rm(fs.mountpoint, { recursive: true, force: true });
    await rm(fs.image, { force: true });
  }

  /**
   * Unmounts and deletes the spare filesystems; no refill starts after it
   * (one a take deferred until after a close would leave spares mounted).
   */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.filling.values()].map((p) => p.catch(() => undefined)));
    for (const list of this.ready.values()) for (const fs of list.splice(0)) await this.discard(fs);
  }

  /** Makes diskMb the most recent size; the spares of a size that falls off the list are discarded (a size still filling is dropped by its refill). */
  private touch(diskMb: number): Promise<void>[] {
    this.recentSizes = [diskMb, ...this.recentSizes.filter((s) => s !== diskMb)];
    return this.recentSizes.splice(this.spareSizes).filter((size) => !this.filling.has(size)).map((size) => this.drop(size));
  }

  private async drop(diskMb: number): Promise<void> {
    const list = this.ready.get(diskMb) ?? [];
    this.ready.delete(diskMb);
    for (const fs of list.splice(0)) await this.discard(fs);
  }

  private refill(diskMb: number): Promise<void> {
    let p = this.filling.get(diskMb);
    if (!p && (this.closed || !this.recentSizes.includes(diskMb))) return Promise.resolve();
    if (!p) {
      p = (async () => {
        const list = this.ready.get(diskMb) ?? [];
        this.ready.set(diskMb, list);
        while (!this.closed && this.recentSizes.includes(diskMb) && list.length < this.spares) list.push(await this.prepare(diskMb));
        if (!this.recentSizes.includes(diskMb)) await this.drop(diskMb);
      })().finally(() => this.filling.delete(diskMb));
      this.filling.set(diskMb, p);
    }
    return p;
  }

  private async prepare(diskMb: number): Promise<UpperFs> {
    const id = randomBytes(6).toString("hex");
    const image = join(this.dir, `${id}.img`);
    const mountpoint = join(this.dir, id);
    const f = await open(image, "wx");
    try {
      await f.truncate(diskMb * 1024 * 1024);
    } finally {
      await f.close();
    }
    try {
      // Not child_process: forking the agent stops its event loop while the page tables are copied.
      const mkfs = await native.spawnWait(["mkfs.ext4", ...MKFS_ARGS, image]);
      if (mkfs.status !== 0) throw new Error(`mkfs.ext4 ${image} failed (${mkfs.status ?? `signal ${mkfs.signal}`}): ${mkfs.stderr.trim()}`);
      await mkdir(mountpoint);
      await native.fsLoopMount(image, mountpoint, "ext4");
    } catch (err) {
      await rm(image, { force: true });
      await rm(mountpoint, { recursive: true, force: true });
      throw err;
    }
    return { id, diskMb, mountpoint, image };
  }
}
