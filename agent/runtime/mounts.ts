/**
 * @module The container's filesystem layout after runc's defaults
 * (specconv/example.go, rootfs_linux.go): /proc, a tmpfs /dev holding only
 * null, zero, full, random, urandom and tty (bind-mounted from the host, since
 * mknod is refused in a user namespace; no fuse), ptmx from a private devpts,
 * /dev/shm, /dev/mqueue, read-only /sys, the /dev/fd symlinks, then the
 * generated /etc files. Masked and read-only paths are runc's and Docker's.
 */
import type { NativeMountOp } from "../native/container";

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
] as const;

export const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"] as const;

export interface EtcFiles {
  hosts: string;
  resolvConf: string;
  hostname: string;
}

/**
 * `ownNetns` false means the container joins a namespace the host created:
 * sysfs cannot be mounted from a user namespace that does not own the network
 * namespace, so the host's /sys is bind-mounted read-only instead (as runc's rootless mode does).
 */
export function containerMounts(etc: EtcFiles, ownNetns: boolean): NativeMountOp[] {
  const { NOSUID, NODEV, NOEXEC, RDONLY, STRICTATIME, REC } = MS;
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
    ownNetns
      ? { kind: "mount", source: "sysfs", target: "/sys", fstype: "sysfs", flags: NOSUID | NOEXEC | NODEV | RDONLY, data: "" }
      : { kind: "bind", source: "/sys", target: "/sys", flags: REC, readonly: true, file: false },
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
