/**
 * @module What a tenant tries from inside its container to see past its own
 * cgroup, each probe named by the attack, with what it must print on a sound
 * runtime. Shared by the test on this host's layout and the child that runs
 * the same probes with cgroup2 alone (cgroup-view-child.ts).
 */
import { basename } from "node:path";
import { containerCgroupPaths, type CgroupLayout } from "../../../agent/runtime/cgroups";
import { MASKED_PATHS } from "../../../agent/runtime/mounts";

/** Mount points below /sys the runtime makes itself: the cgroup view and the masked paths. */
const OWN_SYS_MOUNTS = ["/sys/fs/cgroup", ...MASKED_PATHS.filter((p) => p.startsWith("/sys/"))].join("|");

/** The cell the probe runs on and the other tenant's container it is after. */
export interface ProbeTarget {
  layout: CgroupLayout;
  parent: string;
  victimId: string;
  /** The probing container's memory limit. */
  memoryMb: number;
}

export interface Probe {
  attack: string;
  script(t: ProbeTarget): string;
  expected(t: ProbeTarget): string;
}

/** The file holding the container's own memory limit as it sees it, null when no hierarchy limits memory. */
function ownLimitFile({ layout }: ProbeTarget): string | null {
  if (layout.v1.memory) return `/sys/fs/cgroup/${basename(layout.v1.memory)}/memory.limit_in_bytes`;
  return layout.v2?.controllers.includes("memory") ? "/sys/fs/cgroup/memory.max" : null;
}

export const CGROUP_VIEW_PROBES: Probe[] = [
  {
    attack: "a tenant lists other containers' cgroups through /sys/fs/cgroup",
    script: (t) => `find /sys/fs/cgroup 2>/dev/null | grep -c -e '${t.victimId}' -e '${t.parent}'; echo end`,
    expected: () => "0\nend\n",
  },
  {
    attack: "a tenant reads another container's memory stats at its host cgroup path",
    script: (t) => {
      const files = containerCgroupPaths(t.layout, t.parent, t.victimId).flatMap((dir) =>
        ["memory.usage_in_bytes", "memory.stat", "memory.current", "cgroup.procs"].map((f) => `${dir}/${f}`),
      );
      return `for f in ${files.join(" ")}; do cat "$f" 2>/dev/null && echo "read $f"; done; echo end`;
    },
    expected: () => "end\n",
  },
  {
    attack: "a tenant looks for its own cgroup: at /sys/fs/cgroup, read-only, and /proc/self/cgroup says /",
    script: (t) => {
      const limit = ownLimitFile(t);
      return `${limit ? `cat ${limit}; ` : ""}cut -d: -f3 /proc/self/cgroup | sort -u; mkdir /sys/fs/cgroup/x 2>/dev/null || echo ro`;
    },
    expected: (t) => `${ownLimitFile(t) ? `${t.memoryMb * 1024 * 1024}\n` : ""}/\nro\n`,
  },
  {
    attack: "a tenant lists the host's network interfaces and mounts through /sys",
    // Below /sys only the cgroup view and the masked paths may be mounted.
    script: () =>
      "ls /sys/class/net; awk '{ split($0, tail, \" - \"); split(tail[2], fs, \" \") } " +
      `$5 == "/sys" { print $4, $6, fs[1], fs[2] } $5 ~ "^/sys/" && $5 !~ "^(${OWN_SYS_MOUNTS})" { print $5 }` +
      "' /proc/self/mountinfo; touch /sys/kernel/x 2>/dev/null || echo ro",
    // lo alone: the probes' namespaces hold nothing else.
    expected: () => "lo\n/ ro,nosuid,nodev,noexec,relatime sysfs sysfs\nro\n",
  },
];
