/**
 * @module The container runtime's edge: spec → toRuntimeConfig() → validate()
 * → native.containerCreate(), plus the files around it (state.json, generated
 * /etc files, the io directory), re-adoption after an agent restart, and
 * destroy. Decisions live in the pure modules beside this one.
 */
import { chownSync, closeSync, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { chmod, chown, mkdir, open, readFile, readdir, rm, rmdir, writeFile } from "node:fs/promises";
import { constants as fsConstants } from "node:fs";
import { constants as osConstants } from "node:os";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { z } from "zod";
import type { NativeExit, NativeRlimit } from "../native/container";
import { NATIVE_BUILD_DIR, native } from "../native/index";
import type { Exit } from "../../shared/protocol/instance";
import { containerResolvConf } from "../network/resolv-conf";
import {
  cgroupLayout,
  containerCgroupPaths,
  oomCounterFile,
  parentCgroupPaths,
  parseCgroupMounts,
  parseCpuUsageUsec,
  parseOomKills,
  usageFiles,
  type CgroupLayout,
} from "./cgroups";
import { RLIMIT_NOFILE, toRuntimeConfig, validate } from "./config";
import { containerExit } from "./exit";
import { DEFAULT_ID_RANGE, idRangeForSlot, type IdRangeOptions } from "./ids";
import { hostsFile } from "./mounts";
import { parseContainerSpec, SpecError } from "./spec";
import { containerStateSchema, initExitSchema, STATE_VERSION, type ContainerState } from "./state";
import { resolveUser } from "./user";

export interface RuntimeOptions {
  /** Holds one directory per container: state.json, etc/, io/ (logs, exit.json). */
  stateDir: string;
  /** cgroup directory (under each hierarchy) holding this agent's containers. */
  cgroupParent: string;
  ids?: IdRangeOptions;
  log?: { maxBytes: number; keepFiles: number };
  /** Used when the host has no non-loopback nameserver. */
  fallbackNameservers?: string[];
  hostResolvConf?: string;
  rlimits?: NativeRlimit[];
  /** How long destroy waits for the kernel to empty the cgroups. */
  cgroupRemoveTimeoutMs?: number;
  initPath?: string;
}

const DEFAULT_LOG = { maxBytes: 8 * 1024 * 1024, keepFiles: 2 };
const DEFAULT_RLIMITS: NativeRlimit[] = [{ resource: RLIMIT_NOFILE, soft: 1024, hard: 4096 }];
const DEFAULT_INIT = `${NATIVE_BUILD_DIR}berth-init`;

/** Reads the host's cgroup layout (mountinfo, the v2 root's controllers, swap accounting). */
export async function detectCgroupLayout(): Promise<CgroupLayout> {
  const mounts = parseCgroupMounts(await readFile("/proc/self/mountinfo", "utf8"));
  const controllers = mounts.v2 ? await readFile(join(mounts.v2, "cgroup.controllers"), "utf8") : "";
  const memory = mounts.v1.get("memory");
  return cgroupLayout(mounts, controllers, memory !== undefined && existsSync(join(memory, "memory.memsw.limit_in_bytes")));
}

/** Larger /etc/passwd or /etc/group files are refused: they are read whole, on the agent's thread. */
const MAX_ETC_FILE_BYTES = 1 << 20;

/**
 * Reads a file of the rootfs without following symlinks out of it: /etc must
 * be a real directory and the file is opened O_NOFOLLOW. Missing → "". The
 * image chose what is there: O_NONBLOCK and the regular-file check keep a
 * FIFO (or device) from holding this thread in open() or read() forever.
 */
function readRootfsEtc(rootfs: string, name: string): string {
  try {
    if (!lstatSync(join(rootfs, "etc")).isDirectory()) return "";
    const fd = openSync(join(rootfs, "etc", name), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error("not a regular file");
      if (st.size > MAX_ETC_FILE_BYTES) throw new Error(`${st.size} bytes, more than the ${MAX_ETC_FILE_BYTES} allowed`);
      return readFileSync(fd, "utf8");
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if (e instanceof Error && "code" in e && e.code === "ENOENT") return "";
    throw new SpecError("user", `cannot read /etc/${name} of the rootfs: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** A host file such as resolv.conf; "" when it cannot be read. */
function readHostFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    if (e instanceof Error && "code" in e && e.code === "ENOENT") return null;
    throw e;
  }
}

/**
 * berth-init's exit.json: the io directory is the container root's to write,
 * so no symlink is followed, no FIFO waited on, at most 4 KiB read, and
 * anything that is not a record counts as none.
 */
async function readExitRecord(path: string): Promise<z.infer<typeof initExitSchema> | null> {
  const fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK).catch(() => null);
  if (!fh) return null;
  try {
    if (!(await fh.stat()).isFile()) return null;
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(4096), 0, 4096, 0);
    const parsed = initExitSchema.safeParse(JSON.parse(buffer.subarray(0, bytesRead).toString("utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  } finally {
    await fh.close();
  }
}

function writeFileAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text, { mode: 0o644 });
  renameSync(`${path}.tmp`, path);
}

export class Runtime {
  private constructor(
    readonly options: Required<RuntimeOptions>,
    readonly layout: CgroupLayout,
  ) {}

  static async open(options: RuntimeOptions): Promise<Runtime> {
    const full: Required<RuntimeOptions> = {
      ids: DEFAULT_ID_RANGE,
      log: DEFAULT_LOG,
      fallbackNameservers: ["1.1.1.1", "8.8.8.8"],
      hostResolvConf: "/etc/resolv.conf",
      rlimits: DEFAULT_RLIMITS,
      cgroupRemoveTimeoutMs: 5000,
      initPath: DEFAULT_INIT,
      ...options,
    };
    // 0711: the container's mapped root must traverse it to reach the /etc bind sources.
    await mkdir(full.stateDir, { recursive: true, mode: 0o711 });
    // berth-init holds the host io dir's fd. A binary the container's root cannot
    // read is never dumpable from its exec on (the kernel's would_dump()), so
    // /proc/1/fd stays closed to the app without waiting for init's own prctl.
    await chown(full.initPath, 0, 0);
    await chmod(full.initPath, 0o711);
    return new Runtime(full, await detectCgroupLayout());
  }

  private dir(id: string): string {
    return join(this.options.stateDir, id);
  }

  /** Builds and starts a container; resolves once its app has been exec'd. */
  async create(input: unknown): Promise<Container> {
    const spec = parseContainerSpec(input);
    const ids = idRangeForSlot(spec.slot, this.options.ids);
    const dir = this.dir(spec.id);
    // The small files of a start are read and written with plain synchronous
    // syscalls (microseconds each), as rootfs-manager does: each fs/promises
    // call is a thread-pool round trip that queues behind other starts' pulls
    // and mounts, and there are about twenty here.
    const user = resolveUser(spec.user, readRootfsEtc(spec.rootfs, "passwd"), readRootfsEtc(spec.rootfs, "group"));
    const hostResolv = readHostFile(this.options.hostResolvConf);
    // mkdir without recursive fails with EEXIST: two creates of one id never share a directory.
    mkdirSync(dir, { mode: 0o711 });
    const cgroupPaths = containerCgroupPaths(this.layout, this.options.cgroupParent, spec.id);
    try {
      const hostname = spec.hostname ?? spec.id.slice(0, 63);
      const etc = { hosts: join(dir, "hosts"), resolvConf: join(dir, "resolv.conf"), hostname: join(dir, "hostname") };
      const ioDir = join(dir, "io");
      // The files appear root-owned inside; the io dir is where berth-init (mapped root) writes.
      writeFileSync(etc.hosts, hostsFile(hostname, spec.address), { mode: 0o644 });
      writeFileSync(etc.resolvConf, containerResolvConf(hostResolv, this.options.fallbackNameservers), { mode: 0o644 });
      writeFileSync(etc.hostname, `${hostname}\n`, { mode: 0o644 });
      mkdirSync(ioDir, { mode: 0o700 });
      for (const path of [etc.hosts, etc.resolvConf, etc.hostname, ioDir]) chownSync(path, ids.hostId, ids.hostId);

      const config = toRuntimeConfig(spec, {
        initPath: this.options.initPath,
        ids,
        user,
        layout: this.layout,
        cgroupParent: this.options.cgroupParent,
        ioDir,
        etc,
        log: this.options.log,
        rlimits: this.options.rlimits,
      });
      validate(config);
      const proc = await native.containerCreate(config);
      const state: ContainerState = {
        version: STATE_VERSION,
        id: spec.id,
        pid: proc.pid,
        startTime: proc.startTime,
        slot: spec.slot,
        cgroupPaths,
        oomCounterFile: oomCounterFile(this.layout, this.options.cgroupParent, spec.id),
        usageFiles: usageFiles(this.layout, this.options.cgroupParent, spec.id),
        createdAt: Date.now(),
      };
      writeFileAtomic(join(dir, "state.json"), JSON.stringify(state));
      return new Container(this, state, native.containerWatch(proc.pid, proc.startTime));
    } catch (e) {
      await removeCgroups(cgroupPaths, this.options.cgroupRemoveTimeoutMs);
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Ids of the containers this state directory knows. */
  async list(): Promise<string[]> {
    const entries = await readdir(this.options.stateDir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && existsSync(join(this.options.stateDir, e.name, "state.json"))).map((e) => e.name);
  }

  /**
   * Containers with a process still alive, by id: by state file (its init)
   * and by cgroup (any process under the parent, so also a container whose
   * state file was never written). A process in the parent itself is named
   * by the parent's path.
   */
  async running(): Promise<string[]> {
    const ids = new Set<string>();
    for (const id of await this.list()) {
      const state = containerStateSchema.parse(await readJson(join(this.dir(id), "state.json")));
      if (native.processStartTime(state.pid) === state.startTime) ids.add(id);
    }
    for (const [id, pids] of await this.cgroupProcesses()) if (pids.length > 0) ids.add(id);
    return [...ids].sort();
  }

  /**
   * Host pids in the cgroups under the parent, by container id (the first
   * directory below the parent); the parent's own processes under its path.
   */
  private async cgroupProcesses(): Promise<Map<string, number[]>> {
    const found = new Map<string, number[]>();
    for (const parent of parentCgroupPaths(this.layout, this.options.cgroupParent)) {
      for (const dir of [parent, ...(await cgroupDirsUnder(parent))]) {
        const id = dir === parent ? parent : relative(parent, dir).split("/")[0]!;
        const procs = await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "");
        found.set(id, [...new Set([...(found.get(id) ?? []), ...procs.split("\n").filter(Boolean).map(Number)])]);
      }
    }
    return found;
  }

  /**
   * Stops and removes the containers that have no state record: an agent
   * killed between the native create and the state write leaves one running
   * and known to nobody (an earlier kill, a directory or empty cgroups). They
   * are found by their cgroups under the parent and their directories; live
   * ones are killed (cgroup.kill where v2 has it, else SIGKILL to every
   * process listed), then their cgroups and directory are removed. Only at
   * start, before any create: a create in flight looks the same.
   */
  async stopOrphans(): Promise<Array<{ id: string; pids: number[] }>> {
    const parents = parentCgroupPaths(this.layout, this.options.cgroupParent);
    const found = await this.cgroupProcesses();
    for (const e of await readdir(this.options.stateDir, { withFileTypes: true })) if (e.isDirectory() && !found.has(e.name)) found.set(e.name, []);
    const orphans: Array<{ id: string; pids: number[] }> = [];
    for (const [id, pids] of found) {
      if (parents.includes(id) || existsSync(join(this.dir(id), "state.json"))) continue;
      const paths: string[] = [];
      // Deepest first: a cgroup with children cannot be removed.
      for (const path of containerCgroupPaths(this.layout, this.options.cgroupParent, id)) paths.push(...(await cgroupDirsUnder(path)).reverse(), path);
      for (const path of paths) await writeFile(join(path, "cgroup.kill"), "1").catch(() => undefined);
      await removeCgroups(paths, this.options.cgroupRemoveTimeoutMs);
      await rm(this.dir(id), { recursive: true, force: true });
      orphans.push({ id, pids });
    }
    return orphans;
  }

  /** Removes the parent cgroup directories with what dead containers left under them (decommissioning); idempotent. */
  async removeCgroupParents(): Promise<void> {
    for (const parent of parentCgroupPaths(this.layout, this.options.cgroupParent)) {
      if (!existsSync(parent)) continue;
      // Deepest first: a cgroup directory with children cannot be removed.
      await removeCgroups([...(await cgroupDirsUnder(parent)).reverse(), parent], this.options.cgroupRemoveTimeoutMs);
    }
  }

  /**
   * Re-adopts a container started by an earlier agent process: its exit is
   * still learned (pidfd_open works on any pid) and recorded by berth-init.
   * Null when no state exists.
   */
  async adopt(id: string): Promise<Container | null> {
    const raw = await readJson(join(this.dir(id), "state.json"));
    if (raw === null) return null;
    const state = containerStateSchema.parse(raw);
    const alive = native.processStartTime(state.pid) === state.startTime;
    const watch: Promise<NativeExit | null> = alive ? native.containerWatch(state.pid, state.startTime).catch(() => null) : Promise.resolve(null);
    return new Container(this, state, watch);
  }

  /** @internal */
  async readExit(state: ContainerState, init: NativeExit | null): Promise<Exit> {
    const [recorded, oomText] = await Promise.all([
      readExitRecord(join(this.dir(state.id), "io", "exit.json")),
      state.oomCounterFile ? readFile(state.oomCounterFile, "utf8").catch(() => "") : "",
    ]);
    return containerExit(recorded, init, parseOomKills(oomText));
  }

  /** @internal */
  async remove(state: ContainerState): Promise<void> {
    await removeCgroups(state.cgroupPaths, this.options.cgroupRemoveTimeoutMs);
    await rm(this.dir(state.id), { recursive: true, force: true });
  }

  logPath(id: string, stream: "stdout" | "stderr"): string {
    return join(this.dir(id), "io", `${stream}.log`);
  }
}

/** Every cgroup directory below `dir`, parents before their children; none when `dir` is missing. */
async function cgroupDirsUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return [];
    throw e;
  });
  for (const e of entries) {
    if (e.isDirectory()) out.push(join(dir, e.name), ...(await cgroupDirsUnder(join(dir, e.name))));
  }
  return out;
}

/**
 * Empties and removes the container's cgroups. The pid namespace dies with
 * its init, but the kernel needs a moment to tear the tasks down; anything
 * still listed (there should be nothing) is killed.
 */
async function removeCgroups(paths: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const path of paths) {
    for (;;) {
      try {
        await rmdir(path);
        break;
      } catch (e) {
        const code = e instanceof Error && "code" in e ? e.code : null;
        if (code === "ENOENT") break;
        if (code !== "EBUSY" || Date.now() > deadline) throw e;
        await writeFile(join(path, "cgroup.kill"), "1").catch(() => undefined);
        const procs = await readFile(join(path, "cgroup.procs"), "utf8").catch(() => "");
        for (const pid of procs.split("\n").filter(Boolean)) {
          try {
            process.kill(Number(pid), "SIGKILL");
          } catch {
            // already gone: that is what we want
          }
        }
        await sleep(5);
      }
    }
  }
}

export class Container {
  readonly exited: Promise<Exit>;
  private destroyed: Promise<void> | null = null;

  /** @internal use Runtime.create / Runtime.adopt */
  constructor(
    private readonly runtime: Runtime,
    readonly state: ContainerState,
    watch: Promise<NativeExit | null>,
  ) {
    this.exited = watch.then((init) => runtime.readExit(state, init));
  }

  get id(): string {
    return this.state.id;
  }
  get pid(): number {
    return this.state.pid;
  }

  /** Signals the app (berth-init forwards everything but SIGKILL, which ends the whole container). */
  signal(signal: NodeJS.Signals): boolean {
    return native.containerSignal(this.state.pid, this.state.startTime, osConstants.signals[signal]);
  }

  /** Memory in bytes and CPU time in microseconds used so far, from the cgroups; null where unknown. */
  async usage(): Promise<{ memoryBytes: number | null; cpuUsec: number | null }> {
    const read = (path: string | null) => (path ? readFile(path, "utf8").catch(() => null) : Promise.resolve(null));
    const [memory, cpuStat] = await Promise.all([read(this.state.usageFiles.memory), read(this.state.usageFiles.cpuStat)]);
    return { memoryBytes: memory === null ? null : Number(memory.trim()), cpuUsec: cpuStat === null ? null : parseCpuUsageUsec(cpuStat) };
  }

  /** Kills every process, waits, removes cgroups and state; idempotent. */
  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      // SIGKILL to a pid namespace's init kills every process in it, atomically for forks.
      native.containerSignal(this.state.pid, this.state.startTime, osConstants.signals.SIGKILL);
      await this.exited;
      await this.runtime.remove(this.state);
    })();
    return this.destroyed;
  }
}
