/**
 * @module The container's filesystem layout after runc's defaults
 * (specconv/example.go, rootfs_linux.go): /proc, a tmpfs /dev holding only
 * null, zero, full, random, urandom and tty (bind-mounted from the host, since
 * mknod is refused in a user namespace; no fuse), ptmx from a private devpts,
 * /dev/shm, /dev/mqueue, a read-only sysfs at /sys with the container's own
 * cgroups at /sys/fs/cgroup, the /dev/fd symlinks, then the generated /etc
 * files. Masked and read-only paths are runc's and Docker's.
 */
import { basename } from "node:path";
import type { NativeMountOp } from "../native/container";
import type { CgroupLayout } from "./cgroups";

/** MS_* flags from sys/mount.h. */
export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  BIND: 4096,
  REC: 16384,
  STRICTATIME: 1 << 24,
} as const;

export const DEFAULT_DEVICES = ["null", "zero", "full", "random", "urandom", "tty"] as const;

export const MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
] as const;

export const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"] as const;

/** Where the container sees its cgroups. */
export const CGROUP_VIEW = "/sys/fs/cgroup";

/**
 * /sys/fs/cgroup as Docker shows it with a cgroup namespace: the container's
 * own cgroup directories only, bound read-only from the host (the namespace,
 * entered after the cgroups are joined, makes /proc/self/cgroup and these
 * mounts' roots read "/"). cgroup v2 alone: its directory is /sys/fs/cgroup.
 * v1 or the hybrid: a tmpfs holding one directory per hierarchy, named as on
 * the host ("memory", "cpu,cpuacct", "unified"), and a symlink for a
 * co-mounted controller ("cpu" -> "cpu,cpuacct"); the tmpfs is made read-only
 * with the read-only paths, after these binds.
 */
export function cgroupViewMounts(layout: CgroupLayout, parent: string, id: string): NativeMountOp[] {
  const bind = (mount: string, target: string): NativeMountOp => ({
    kind: "bind",
    source: `${mount}/${parent}/${id}`,
    target,
    flags: 0,
    readonly: true,
    file: false,
  });
  const v1Mounts = [...new Set(Object.values(layout.v1))];
  if (v1Mounts.length === 0) return layout.v2 ? [bind(layout.v2.mount, CGROUP_VIEW)] : [];
  const { NOSUID, NODEV, NOEXEC } = MS;
  return [
    { kind: "mount", source: "tmpfs", target: CGROUP_VIEW, fstype: "tmpfs", flags: NOSUID | NODEV | NOEXEC, data: "mode=755" },
    ...v1Mounts.map((mount) => bind(mount, `${CGROUP_VIEW}/${basename(mount)}`)),
    ...Object.entries(layout.v1)
      .filter(([controller, mount]) => basename(mount) !== controller)
      .map(([controller, mount]): NativeMountOp => ({ kind: "symlink", target: `${CGROUP_VIEW}/${controller}`, linkTarget: basename(mount) })),
    ...(layout.v2 ? [bind(layout.v2.mount, `${CGROUP_VIEW}/${basename(layout.v2.mount)}`)] : []),
  ];
}

export interface EtcFiles {
  hosts: string;
  resolvConf: string;
  hostname: string;
}

/**
 * `cgroupView` (cgroups.ts) goes over the fresh read-only sysfs: nothing of
 * the host's /sys, its submounts or its network interfaces, is reachable.
 */
export function containerMounts(etc: EtcFiles, cgroupView: NativeMountOp[]): NativeMountOp[] {
  const { NOSUID, NODEV, NOEXEC, STRICTATIME } = MS;
  return [
    { kind: "mount", source: "proc", target: "/proc", fstype: "proc", flags: NOSUID | NODEV | NOEXEC, data: "" },
    { kind: "mount", source: "tmpfs", target: "/dev", fstype: "tmpfs", flags: NOSUID | STRICTATIME, data: "mode=755,size=65536k" },
    ...DEFAULT_DEVICES.map(
      (d): NativeMountOp => ({ kind: "bind", source: `/dev/${d}`, target: `/dev/${d}`, flags: 0, readonly: false, file: true }),
    ),
    {
      kind: "mount",
      source: "devpts",
      target: "/dev/pts",
      fstype: "devpts",
      flags: NOSUID | NOEXEC,
      data: "newinstance,ptmxmode=0666,mode=0620,gid=5",
    },
    { kind: "symlink", target: "/dev/ptmx", linkTarget: "pts/ptmx" },
    { kind: "mount", source: "shm", target: "/dev/shm", fstype: "tmpfs", flags: NOSUID | NOEXEC | NODEV, data: "mode=1777,size=65536k" },
    { kind: "mount", source: "mqueue", target: "/dev/mqueue", fstype: "mqueue", flags: NOSUID | NOEXEC | NODEV, data: "" },
    { kind: "sysfs", target: "/sys" },
    ...cgroupView,
    { kind: "symlink", target: "/dev/fd", linkTarget: "/proc/self/fd" },
    { kind: "symlink", target: "/dev/stdin", linkTarget: "/proc/self/fd/0" },
    { kind: "symlink", target: "/dev/stdout", linkTarget: "/proc/self/fd/1" },
    { kind: "symlink", target: "/dev/stderr", linkTarget: "/proc/self/fd/2" },
    { kind: "bind", source: etc.hosts, target: "/etc/hosts", flags: 0, readonly: true, file: true },
    { kind: "bind", source: etc.resolvConf, target: "/etc/resolv.conf", flags: 0, readonly: true, file: true },
    { kind: "bind", source: etc.hostname, target: "/etc/hostname", flags: 0, readonly: true, file: true },
  ];
}

/** /etc/hosts: localhost, and the hostname on the container's address (loopback until networking gives one). */
export function hostsFile(hostname: string, address: string | null): string {
  return [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    `${address ?? "127.0.0.1"}\t${hostname}`,
    "",
  ].join("\n");
}
