/**
 * @module The container half of the native addon (src/container*.cc and the
 * static init helper init/berth-init.c). Every decision (id maps, mounts,
 * masked paths, capabilities, seccomp rules, rlimits, cgroup files) is made in
 * agent/runtime/ and arrives here as one plain object, which the addon copies
 * into a C++ struct on the main thread before anything forks.
 */

/** One line of /proc/PID/uid_map or gid_map. */
export interface NativeIdMapping {
  containerId: number;
  hostId: number;
  size: number;
}

/** A cgroup directory to create, the files to write in it (in order), and whether the init joins it. */
export interface NativeCgroupDir {
  path: string;
  files: Array<{ name: string; value: string }>;
  /** Write the init's pid into cgroup.procs (false for parents whose subtree_control is all that is written). */
  join: boolean;
}

/**
 * A mount step run inside the new mount namespace before pivot_root. Targets are
 * absolute paths inside the container; they are resolved inside the rootfs with
 * openat2(RESOLVE_IN_ROOT), so an image's symlinks cannot redirect them to the host.
 */
export type NativeMountOp =
  | { kind: "mount"; source: string; target: string; fstype: string; flags: number; data: string }
  /**
   * A read-only sysfs of the container's network namespace (at most one). A
   * namespace the host made (netnsPath) is owned by the host's user namespace,
   * where the container's root may not mount sysfs: the create thread, which
   * has joined it, makes the mount (fsmount) and the child attaches it.
   */
  | { kind: "sysfs"; target: string }
  | { kind: "bind"; source: string; target: string; flags: number; readonly: boolean; file: boolean }
  | { kind: "symlink"; target: string; linkTarget: string };

/** A libseccomp argument comparison (SCMP_CMP_*). */
export interface NativeSeccompArg {
  index: number;
  op: "ne" | "lt" | "le" | "eq" | "ge" | "gt" | "masked_eq";
  value: number;
  valueTwo: number;
}

export interface NativeSeccompRule {
  names: string[];
  action: "allow" | "errno";
  /** For action "errno". */
  errno: number;
  args: NativeSeccompArg[];
}

export interface NativeSeccompProfile {
  /** errno returned by every syscall no rule allows. */
  defaultErrno: number;
  /** libseccomp architecture names ("x86_64", "x86", "x32"). */
  architectures: string[];
  rules: NativeSeccompRule[];
}

export interface NativeRlimit {
  /** RLIMIT_* number. */
  resource: number;
  /** -1 means RLIM_INFINITY. */
  soft: number;
  hard: number;
}

export interface NativeProcessConfig {
  /** argv[0] is looked up on the PATH of `env` when it has no slash. */
  argv: string[];
  /** "NAME=value" strings. */
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  /** CAP_* numbers kept in the bounding, permitted and effective sets. */
  capabilities: number[];
  rlimits: NativeRlimit[];
}

export interface NativeContainerConfig {
  id: string;
  /** Path of the static berth-init helper built beside the addon. */
  initPath: string;
  /** Directory already holding the container's root filesystem. */
  rootfs: string;
  hostname: string;
  uidMap: NativeIdMapping[];
  gidMap: NativeIdMapping[];
  /** Join this network namespace; null creates a new, empty one. */
  netnsPath: string | null;
  cgroups: NativeCgroupDir[];
  mounts: NativeMountOp[];
  /** Paths hidden after pivot_root (/dev/null over files, an empty read-only tmpfs over directories). */
  maskedPaths: string[];
  readonlyPaths: string[];
  /**
   * Host directory owned by the container's mapped root: the init writes
   * stdout.log, stderr.log (rotated) and exit.json there.
   */
  ioDir: string;
  log: { maxBytes: number; keepFiles: number };
  process: NativeProcessConfig;
  seccomp: NativeSeccompProfile;
}

/** A running container's init, identified in a way that survives pid reuse. */
export interface NativeContainerProcess {
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks since boot). */
  startTime: number;
}

/** How the watched process ended; status and signal are null when it was not our child (adopted). */
export interface NativeExit {
  reaped: boolean;
  status: number | null;
  signal: number | null;
}

export interface NativeContainer {
  /** Builds the container and resolves once the app has been exec'd (or rejects with a NativeError). Runs off the event loop. */
  containerCreate(config: NativeContainerConfig): Promise<NativeContainerProcess>;
  /**
   * Resolves when the process exits. Works for a process this agent did not
   * start (pidfd_open), as long as pid and start time still match; rejects with
   * a NativeError (code ESRCH) when they do not. A pending watch keeps Node's event loop alive
   * (the agent leaves with process.exit; its containers keep running).
   */
  containerWatch(pid: number, startTime: number): Promise<NativeExit>;
  /** Sends a signal through a pidfd; false when the process (pid + start time) is gone. */
  containerSignal(pid: number, startTime: number, signal: number): boolean;
  /** Start time of a live process, null when there is none. */
  processStartTime(pid: number): number | null;
  /**
   * Runs a helper program (PATH lookup, stdin and stdout on /dev/null) and
   * resolves when it ends, with the first 16 KiB of its stderr. posix_spawn,
   * not child_process: forking the whole agent stops its event loop for as
   * long as copying its page tables takes. Rejects only when it cannot start.
   */
  spawnWait(argv: string[]): Promise<{ status: number | null; signal: number | null; stderr: string }>;
}
