/**
 * @module spec → the addon's config (runc's specconv), then validate() (runc's
 * configs/validate). Both pure: every path, id and rule the child will use is
 * decided here and table-tested, so container*.cc only applies them.
 */
import type { NativeContainerConfig, NativeRlimit } from "../native/container";
import { capabilityNumbers, DOCKER_DEFAULT_CAPABILITIES } from "./capabilities";
import { cgroupPlan, type CgroupLayout } from "./cgroups";
import { idMap, type IdRange } from "./ids";
import { CGROUP_VIEW, cgroupViewMounts, containerMounts, MASKED_PATHS, READONLY_PATHS, type EtcFiles } from "./mounts";
import { dockerDefaultSeccomp } from "./seccomp";
import type { ContainerSpec } from "./spec";
import type { ResolvedUser } from "./user";
import { commandArgv } from "../../shared/staging/launch";

export const RLIMIT_NOFILE = 7;
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface RuntimeConfigContext {
  initPath: string;
  ids: IdRange;
  user: ResolvedUser;
  layout: CgroupLayout;
  cgroupParent: string;
  /** Host directory for logs and exit.json, owned by the container's mapped root. */
  ioDir: string;
  /** Host files bind-mounted over /etc/hosts, /etc/resolv.conf and /etc/hostname. */
  etc: EtcFiles;
  log: { maxBytes: number; keepFiles: number };
  rlimits: NativeRlimit[];
}

/** The env as NAME=value; PATH and HOME filled in when the image and app set neither (as Docker does). */
export function processEnv(env: Record<string, string>, user: ResolvedUser, hostname: string): string[] {
  const full: Record<string, string> = { PATH: DEFAULT_PATH, HOSTNAME: hostname, HOME: user.home, ...env };
  return Object.entries(full).map(([k, v]) => `${k}=${v}`);
}

export function toRuntimeConfig(spec: ContainerSpec, ctx: RuntimeConfigContext): NativeContainerConfig {
  const hostname = spec.hostname ?? spec.id.slice(0, 63);
  return {
    id: spec.id,
    initPath: ctx.initPath,
    rootfs: spec.rootfs,
    hostname,
    uidMap: idMap(ctx.ids),
    gidMap: idMap(ctx.ids),
    netnsPath: spec.netnsPath,
    cgroups: cgroupPlan(ctx.layout, ctx.cgroupParent, spec.id, {
      memoryBytes: spec.memoryMb * 1024 * 1024,
      cpuWeight: spec.cpuWeight,
      pidsMax: spec.pidsMax,
    }),
    mounts: containerMounts(ctx.etc, cgroupViewMounts(ctx.layout, ctx.cgroupParent, spec.id)),
    maskedPaths: [...MASKED_PATHS],
    // The cgroup view last: its tmpfs holds the binds made before pivot_root.
    readonlyPaths: [...READONLY_PATHS, CGROUP_VIEW],
    ioDir: ctx.ioDir,
    log: ctx.log,
    process: {
      argv: commandArgv(spec.command),
      env: processEnv(spec.env, ctx.user, hostname),
      cwd: spec.workdir,
      uid: ctx.user.uid,
      gid: ctx.user.gid,
      additionalGids: ctx.user.additionalGids,
      capabilities: capabilityNumbers(DOCKER_DEFAULT_CAPABILITIES),
      rlimits: ctx.rlimits,
    },
    seccomp: dockerDefaultSeccomp(),
  };
}

export class RuntimeConfigError extends Error {
  override readonly name = "RuntimeConfigError";
}

function strings(config: NativeContainerConfig): Array<[string, string]> {
  const out: Array<[string, string]> = [
    ["id", config.id],
    ["initPath", config.initPath],
    ["rootfs", config.rootfs],
    ["hostname", config.hostname],
    ["ioDir", config.ioDir],
    ["process.cwd", config.process.cwd],
  ];
  config.process.argv.forEach((a, i) => out.push([`process.argv[${i}]`, a]));
  config.process.env.forEach((e, i) => out.push([`process.env[${i}]`, e]));
  config.mounts.forEach((m, i) => out.push([`mounts[${i}].target`, m.target]));
  return out;
}

const MAX_UID = 0xffffffff - 1;

/**
 * The invariants the addon relies on. Throws RuntimeConfigError naming the
 * field. Host root (id 0) may never be inside a container's id maps.
 */
export function validate(config: NativeContainerConfig): void {
  const fail = (field: string, problem: string): never => {
    throw new RuntimeConfigError(`${field}: ${problem}`);
  };
  for (const [field, value] of strings(config)) if (value.includes("\0")) fail(field, "must not contain NUL");
  for (const [field, value] of [
    ["initPath", config.initPath],
    ["rootfs", config.rootfs],
    ["ioDir", config.ioDir],
    ["process.cwd", config.process.cwd],
  ] as const)
    if (!value.startsWith("/")) fail(field, "must be an absolute path");
  if (config.rootfs === "/") fail("rootfs", "must not be the host's root");
  if (config.process.argv.length === 0 || config.process.argv[0] === "") fail("process.argv", "must name a program");
  if (config.hostname.length === 0 || config.hostname.length > 64) fail("hostname", "must be 1-64 characters");
  for (const [field, map] of [
    ["uidMap", config.uidMap],
    ["gidMap", config.gidMap],
  ] as const) {
    if (map.length === 0) fail(field, "must map at least container root");
    for (const m of map) {
      if (m.size < 1) fail(field, "ranges must not be empty");
      if (m.hostId === 0) fail(field, "must never map host root");
      if (m.hostId + m.size - 1 > MAX_UID || m.containerId + m.size - 1 > MAX_UID) fail(field, "range overflows");
    }
    if (!map.some((m) => m.containerId === 0)) fail(field, "must map container root");
  }
  const inRange = (id: number, map: typeof config.uidMap) => map.some((m) => id >= m.containerId && id < m.containerId + m.size);
  if (!inRange(config.process.uid, config.uidMap)) fail("process.uid", `${config.process.uid} is not mapped`);
  if (!inRange(config.process.gid, config.gidMap)) fail("process.gid", `${config.process.gid} is not mapped`);
  for (const g of config.process.additionalGids) if (!inRange(g, config.gidMap)) fail("process.additionalGids", `${g} is not mapped`);
  for (const c of config.process.capabilities) if (!Number.isInteger(c) || c < 0 || c > 63) fail("process.capabilities", `bad capability ${c}`);
  for (const m of config.mounts) if (!m.target.startsWith("/")) fail("mounts", `target ${m.target} must be absolute`);
  if (config.mounts.filter((m) => m.kind === "sysfs").length > 1) fail("mounts", "at most one sysfs");
  for (const c of config.cgroups) if (!c.path.startsWith("/sys/fs/cgroup")) fail("cgroups", `${c.path} is not under /sys/fs/cgroup`);
  if (!(config.log.maxBytes >= 1)) fail("log.maxBytes", "must be at least 1");
  if (!Number.isInteger(config.log.keepFiles) || config.log.keepFiles < 0 || config.log.keepFiles > 99) fail("log.keepFiles", "must be 0-99");
}
