/**
 * @module cgroups as plain files, v1, v2 and the hybrid this machine runs
 * (memory, cpu and pids on v1, an empty cgroup2 at /sys/fs/cgroup/unified).
 * Pure: the layout comes from /proc/self/mountinfo and the v2 root's
 * cgroup.controllers, read by the caller; these functions only decide which
 * directories to create and which files to write.
 */
import type { NativeCgroupDir } from "../native/container";

export const LIMITED_CONTROLLERS = ["memory", "cpu", "pids"] as const;
export type Controller = (typeof LIMITED_CONTROLLERS)[number];

export interface CgroupLayout {
  /** Mount point of each v1 hierarchy holding a controller we limit. */
  v1: Partial<Record<Controller, string>>;
  /** The cgroup2 mount, if any, and which of our controllers it offers (not claimed by v1). */
  v2: { mount: string; controllers: Controller[] } | null;
  /** v1 memory.memsw.* exists (swap accounting on). */
  swapAccounting: boolean;
}

export interface CgroupLimits {
  memoryBytes: number;
  /** cgroup v2 cpu.weight scale, 1..10000 (100 = default). */
  cpuWeight: number;
  pidsMax: number;
}

/** Mount points of cgroup filesystems from /proc/self/mountinfo text. */
export function parseCgroupMounts(mountinfo: string): { v1: Map<string, string>; v2: string | null } {
  const v1 = new Map<string, string>();
  let v2: string | null = null;
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(" ");
    const [fstype, , superOpts = ""] = line.slice(sep + 3).split(" ");
    const mountPoint = pre[4];
    if (!mountPoint) continue;
    if (fstype === "cgroup2" && v2 === null) v2 = mountPoint;
    if (fstype === "cgroup") for (const opt of superOpts.split(",")) if (!v1.has(opt)) v1.set(opt, mountPoint);
  }
  return { v1, v2 };
}

/** A layout from parsed mounts and the v2 root's cgroup.controllers text. */
export function cgroupLayout(
  mounts: { v1: Map<string, string>; v2: string | null },
  v2Controllers: string,
  swapAccounting: boolean,
): CgroupLayout {
  const v1: CgroupLayout["v1"] = {};
  for (const c of LIMITED_CONTROLLERS) {
    const m = mounts.v1.get(c);
    if (m) v1[c] = m;
  }
  const offered = new Set(v2Controllers.trim().split(/\s+/));
  const v2 = mounts.v2 ? { mount: mounts.v2, controllers: LIMITED_CONTROLLERS.filter((c) => !v1[c] && offered.has(c)) } : null;
  return { v1, v2, swapAccounting };
}

/** runc's conversion between cgroup v2 cpu.weight and v1 cpu.shares. */
export function weightToShares(weight: number): number {
  return Math.round(2 + ((weight - 1) * 262142) / 9999);
}

function v1Files(controller: Controller, limits: CgroupLimits, swap: boolean): NativeCgroupDir["files"] {
  switch (controller) {
    case "memory":
      // Swap capped at the limit itself (Garden: swap = limit): memory + swap never exceeds memory_mb.
      return [
        { name: "memory.limit_in_bytes", value: String(limits.memoryBytes) },
        ...(swap ? [{ name: "memory.memsw.limit_in_bytes", value: String(limits.memoryBytes) }] : []),
      ];
    case "cpu":
      return [{ name: "cpu.shares", value: String(weightToShares(limits.cpuWeight)) }];
    case "pids":
      return [{ name: "pids.max", value: String(limits.pidsMax) }];
  }
}

function v2Files(controller: Controller, limits: CgroupLimits): NativeCgroupDir["files"] {
  switch (controller) {
    case "memory":
      return [
        { name: "memory.max", value: String(limits.memoryBytes) },
        { name: "memory.swap.max", value: "0" },
      ];
    case "cpu":
      return [{ name: "cpu.weight", value: String(limits.cpuWeight) }];
    case "pids":
      return [{ name: "pids.max", value: String(limits.pidsMax) }];
  }
}

/** The agent's parent cgroup directories, one per v1 hierarchy plus the v2 one. */
export function parentCgroupPaths(layout: CgroupLayout, parent: string): string[] {
  const paths = Object.values(layout.v1).map((mount) => `${mount}/${parent}`);
  if (layout.v2) paths.push(`${layout.v2.mount}/${parent}`);
  return [...new Set(paths)];
}

/** The container's cgroup directories, one per v1 hierarchy plus the v2 one. */
export function containerCgroupPaths(layout: CgroupLayout, parent: string, id: string): string[] {
  return parentCgroupPaths(layout, parent).map((p) => `${p}/${id}`);
}

/**
 * Directories to create and files to write, in order. On v2 the parent's
 * cgroup.subtree_control must enable the controllers first (root, then parent).
 */
export function cgroupPlan(layout: CgroupLayout, parent: string, id: string, limits: CgroupLimits): NativeCgroupDir[] {
  const dirs: NativeCgroupDir[] = [];
  const byMount = new Map<string, Controller[]>();
  for (const c of LIMITED_CONTROLLERS) {
    const m = layout.v1[c];
    if (m) byMount.set(m, [...(byMount.get(m) ?? []), c]);
  }
  for (const [mount, controllers] of byMount)
    dirs.push({
      path: `${mount}/${parent}/${id}`,
      files: controllers.flatMap((c) => v1Files(c, limits, layout.swapAccounting)),
      join: true,
    });
  if (layout.v2) {
    const { mount, controllers } = layout.v2;
    if (controllers.length > 0) {
      const enable = { name: "cgroup.subtree_control", value: controllers.map((c) => `+${c}`).join(" ") };
      dirs.push({ path: mount, files: [enable], join: false });
      dirs.push({ path: `${mount}/${parent}`, files: [enable], join: false });
    }
    // Joined even with no controllers: membership alone gives cgroup.kill and cgroup.events.
    dirs.push({ path: `${mount}/${parent}/${id}`, files: controllers.flatMap((c) => v2Files(c, limits)), join: true });
  }
  return dirs;
}

/** Where the OOM-kill counter lives for this layout (v1 memory.oom_control or v2 memory.events). */
export function oomCounterFile(layout: CgroupLayout, parent: string, id: string): string | null {
  if (layout.v1.memory) return `${layout.v1.memory}/${parent}/${id}/memory.oom_control`;
  if (layout.v2?.controllers.includes("memory")) return `${layout.v2.mount}/${parent}/${id}/memory.events`;
  return null;
}

/**
 * Files to read the container's memory and CPU use from: v1 memory.usage_in_bytes
 * or v2 memory.current; v2 cpu.stat (its usage_usec exists in every cgroup2
 * directory, controller or not, so the hybrid's empty unified tree has it too).
 */
export function usageFiles(layout: CgroupLayout, parent: string, id: string): { memory: string | null; cpuStat: string | null } {
  const memory = layout.v1.memory
    ? `${layout.v1.memory}/${parent}/${id}/memory.usage_in_bytes`
    : layout.v2?.controllers.includes("memory")
      ? `${layout.v2.mount}/${parent}/${id}/memory.current`
      : null;
  return { memory, cpuStat: layout.v2 ? `${layout.v2.mount}/${parent}/${id}/cpu.stat` : null };
}

/** usage_usec from cgroup v2 cpu.stat text. */
export function parseCpuUsageUsec(text: string): number | null {
  const m = /^usage_usec (\d+)$/m.exec(text);
  return m ? Number(m[1]) : null;
}

/** The oom_kill count from memory.oom_control (v1) or memory.events (v2) text. */
export function parseOomKills(text: string): number {
  const m = /^oom_kill (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}
