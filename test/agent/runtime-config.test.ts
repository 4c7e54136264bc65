/**
 * The runtime's pure decisions, table by table: user resolution, id ranges,
 * cgroup layout and files, mounts, the seccomp profile, spec parsing,
 * toRuntimeConfig() and validate(), and how an exit is reported.
 */
import { describe, expect, it } from "vitest";
import { CAPABILITY_NUMBERS, capabilityNumbers, DOCKER_DEFAULT_CAPABILITIES } from "../../agent/runtime/capabilities";
import {
  cgroupLayout,
  cgroupPlan,
  containerCgroupPaths,
  oomCounterFile,
  parseCgroupMounts,
  parseCpuUsageUsec,
  parseOomKills,
  usageFiles,
  weightToShares,
  type CgroupLayout,
} from "../../agent/runtime/cgroups";
import { commandArgv } from "../../shared/staging/launch";
import { processEnv, RuntimeConfigError, toRuntimeConfig, validate, type RuntimeConfigContext } from "../../agent/runtime/config";
import { containerExit, signalName } from "../../agent/runtime/exit";
import { freeSlot, idMap, idRangeForSlot } from "../../agent/runtime/ids";
import { cgroupViewMounts, containerMounts, hostsFile, MASKED_PATHS, MS, READONLY_PATHS } from "../../agent/runtime/mounts";
import type { NativeMountOp } from "../../agent/native/container";
import { dockerDefaultSeccomp } from "../../agent/runtime/seccomp";
import { parseContainerSpec, SpecError } from "../../agent/runtime/spec";
import { resolveUser, UserResolutionError } from "../../agent/runtime/user";

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
web:x:1000:1001:web:/srv/web:/bin/sh
broken line
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`;
const GROUP = `root:x:0:
staff:x:50:web,daemon
webgrp:x:1001:
extra:x:2000:web
`;

describe("resolveUser", () => {
  it.each([
    ["", { uid: 0, gid: 0, additionalGids: [], home: "/root" }],
    ["root", { uid: 0, gid: 0, additionalGids: [], home: "/root" }],
    ["web", { uid: 1000, gid: 1001, additionalGids: [50, 2000], home: "/srv/web" }],
    ["1000", { uid: 1000, gid: 1001, additionalGids: [50, 2000], home: "/srv/web" }],
    ["4242", { uid: 4242, gid: 0, additionalGids: [], home: "/" }],
    ["4242:77", { uid: 4242, gid: 77, additionalGids: [], home: "/" }],
    ["web:staff", { uid: 1000, gid: 50, additionalGids: [2000], home: "/srv/web" }],
    ["web:3000", { uid: 1000, gid: 3000, additionalGids: [50, 2000], home: "/srv/web" }],
    ["1:webgrp", { uid: 1, gid: 1001, additionalGids: [50], home: "/usr/sbin" }],
  ])("%j", (user, expected) => {
    expect(resolveUser(user, PASSWD, GROUP)).toEqual(expected);
  });

  it.each([
    ["ghost", "unable to find user ghost"],
    ["web:ghosts", "unable to find group ghosts"],
    ["web:", "empty group"],
    ["a:b:c", "more than one"],
  ])("refuses %j", (user, message) => {
    expect(() => resolveUser(user, PASSWD, GROUP)).toThrow(UserResolutionError);
    expect(() => resolveUser(user, PASSWD, GROUP)).toThrow(message);
  });

  it("treats missing files as empty: root and numeric users still resolve", () => {
    expect(resolveUser("", "", "")).toEqual({ uid: 0, gid: 0, additionalGids: [], home: "/" });
    expect(resolveUser("5:6", "", "")).toEqual({ uid: 5, gid: 6, additionalGids: [], home: "/" });
  });
});

describe("id ranges", () => {
  it.each([
    [0, 100_000],
    [1, 165_536],
    [10, 755_360],
  ])("slot %i starts at host id %i", (slot, hostId) => {
    expect(idRangeForSlot(slot)).toEqual({ hostId, size: 65_536 });
    expect(idMap(idRangeForSlot(slot))).toEqual([{ containerId: 0, hostId, size: 65_536 }]);
  });

  it.each([
    [-1, { base: 100_000, size: 65_536 }, "non-negative"],
    [1.5, { base: 100_000, size: 65_536 }, "non-negative"],
    [0, { base: 0, size: 65_536 }, "never be host root"],
    [70_000, { base: 100_000, size: 65_536 }, "largest host id"],
  ])("refuses slot %s with %j", (slot, opts, message) => {
    expect(() => idRangeForSlot(slot, opts)).toThrow(message);
  });

  it("finds the lowest free slot", () => {
    expect(freeSlot([], 4)).toBe(0);
    expect(freeSlot([0, 1, 3], 4)).toBe(2);
    expect(freeSlot([0, 1, 2, 3], 4)).toBeNull();
  });
});

const HYBRID_MOUNTINFO = `21 26 0:20 / /proc rw,relatime - proc proc rw
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
35 30 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const V2_MOUNTINFO = `21 26 0:20 / /proc rw,relatime - proc proc rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
`;
const COMBINED_V1 = `40 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
41 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
`;

describe("cgroups", () => {
  const hybrid = cgroupLayout(parseCgroupMounts(HYBRID_MOUNTINFO), "hugetlb\n", true);
  const v2 = cgroupLayout(parseCgroupMounts(V2_MOUNTINFO), "cpuset cpu io memory hugetlb pids rdma misc\n", false);
  const limits = { memoryBytes: 128 * 1024 * 1024, cpuWeight: 100, pidsMax: 512 };

  it("reads the hybrid layout: memory, cpu, pids on v1, an empty cgroup2 beside them", () => {
    expect(hybrid).toEqual({
      v1: { memory: "/sys/fs/cgroup/memory", cpu: "/sys/fs/cgroup/cpu", pids: "/sys/fs/cgroup/pids" },
      v2: { mount: "/sys/fs/cgroup/unified", controllers: [] },
      swapAccounting: true,
    });
    expect(v2).toEqual({ v1: {}, v2: { mount: "/sys/fs/cgroup", controllers: ["memory", "cpu", "pids"] }, swapAccounting: false });
  });

  it("plans v1 limits per hierarchy and joins the empty v2 one too", () => {
    expect(cgroupPlan(hybrid, "agent1", "c1", limits)).toEqual([
      {
        path: "/sys/fs/cgroup/memory/agent1/c1",
        files: [
          { name: "memory.limit_in_bytes", value: "134217728" },
          { name: "memory.memsw.limit_in_bytes", value: "134217728" },
        ],
        join: true,
      },
      { path: "/sys/fs/cgroup/cpu/agent1/c1", files: [{ name: "cpu.shares", value: "2597" }], join: true },
      { path: "/sys/fs/cgroup/pids/agent1/c1", files: [{ name: "pids.max", value: "512" }], join: true },
      { path: "/sys/fs/cgroup/unified/agent1/c1", files: [], join: true },
    ]);
  });

  it("on pure v2 enables the controllers down the tree, then writes the limits", () => {
    expect(cgroupPlan(v2, "agent1", "c1", limits)).toEqual([
      { path: "/sys/fs/cgroup", files: [{ name: "cgroup.subtree_control", value: "+memory +cpu +pids" }], join: false },
      { path: "/sys/fs/cgroup/agent1", files: [{ name: "cgroup.subtree_control", value: "+memory +cpu +pids" }], join: false },
      {
        path: "/sys/fs/cgroup/agent1/c1",
        files: [
          { name: "memory.max", value: "134217728" },
          { name: "memory.swap.max", value: "0" },
          { name: "cpu.weight", value: "100" },
          { name: "pids.max", value: "512" },
        ],
        join: true,
      },
    ]);
  });

  it("writes co-mounted v1 controllers into one directory, without memsw when swap accounting is off", () => {
    const layout = cgroupLayout(parseCgroupMounts(COMBINED_V1), "", false);
    expect(cgroupPlan(layout, "p", "c", limits)).toEqual([
      { path: "/sys/fs/cgroup/memory/p/c", files: [{ name: "memory.limit_in_bytes", value: "134217728" }], join: true },
      { path: "/sys/fs/cgroup/cpu,cpuacct/p/c", files: [{ name: "cpu.shares", value: "2597" }], join: true },
    ]);
    expect(containerCgroupPaths(layout, "p", "c")).toEqual(["/sys/fs/cgroup/memory/p/c", "/sys/fs/cgroup/cpu,cpuacct/p/c"]);
  });

  it.each([
    [1, 2],
    [100, 2597],
    [10_000, 262_144],
  ])("cpu weight %i is %i shares", (w, s) => {
    expect(weightToShares(w)).toBe(s);
  });

  it("finds the usage files on the hybrid and on v2, and parses cpu.stat", () => {
    expect(usageFiles(hybrid, "p", "c")).toEqual({
      memory: "/sys/fs/cgroup/memory/p/c/memory.usage_in_bytes",
      cpuStat: "/sys/fs/cgroup/unified/p/c/cpu.stat",
    });
    expect(usageFiles(v2, "p", "c")).toEqual({ memory: "/sys/fs/cgroup/p/c/memory.current", cpuStat: "/sys/fs/cgroup/p/c/cpu.stat" });
    expect(parseCpuUsageUsec("usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n")).toBe(1234);
    expect(parseCpuUsageUsec("")).toBeNull();
  });

  it("finds the OOM counter on v1 and v2 and parses it", () => {
    expect(oomCounterFile(hybrid, "p", "c")).toBe("/sys/fs/cgroup/memory/p/c/memory.oom_control");
    expect(oomCounterFile(v2, "p", "c")).toBe("/sys/fs/cgroup/p/c/memory.events");
    expect(parseOomKills("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")).toBe(3);
    expect(parseOomKills("low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\noom_group_kill 0\n")).toBe(1);
    expect(parseOomKills("")).toBe(0);
  });
});

describe("mounts", () => {
  const etc = { hosts: "/s/c/hosts", resolvConf: "/s/c/resolv.conf", hostname: "/s/c/hostname" };

  it("gives /dev only the default devices, bound from the host, and no fuse", () => {
    const binds = containerMounts(etc, []).filter((m) => m.kind === "bind" && m.target.startsWith("/dev/"));
    expect(binds.map((m) => m.target)).toEqual(["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]);
    expect(containerMounts(etc, []).some((m) => m.target.includes("fuse"))).toBe(false);
    expect(containerMounts(etc, [])).toContainEqual({ kind: "symlink", target: "/dev/ptmx", linkTarget: "pts/ptmx" });
  });

  it("mounts a sysfs of its own at /sys, never the host's, with the cgroup view over it", () => {
    const view: NativeMountOp[] = [{ kind: "bind", source: "/sys/fs/cgroup/p/c", target: "/sys/fs/cgroup", flags: 0, readonly: true, file: false }];
    const mounts = containerMounts(etc, view);
    expect(mounts.filter((m) => m.target.startsWith("/sys"))).toEqual([{ kind: "sysfs", target: "/sys" }, ...view]);
    expect(mounts.some((m) => m.kind === "bind" && m.source === "/sys")).toBe(false);
  });

  it("shows the hybrid's hierarchies as the container's own directories on a tmpfs", () => {
    const hybrid = cgroupLayout(parseCgroupMounts(HYBRID_MOUNTINFO), "", true);
    const bind = (source: string, target: string) => ({ kind: "bind", source, target, flags: 0, readonly: true, file: false });
    expect(cgroupViewMounts(hybrid, "agent1", "c1")).toEqual([
      { kind: "mount", source: "tmpfs", target: "/sys/fs/cgroup", fstype: "tmpfs", flags: MS.NOSUID | MS.NODEV | MS.NOEXEC, data: "mode=755" },
      bind("/sys/fs/cgroup/memory/agent1/c1", "/sys/fs/cgroup/memory"),
      bind("/sys/fs/cgroup/cpu/agent1/c1", "/sys/fs/cgroup/cpu"),
      bind("/sys/fs/cgroup/pids/agent1/c1", "/sys/fs/cgroup/pids"),
      bind("/sys/fs/cgroup/unified/agent1/c1", "/sys/fs/cgroup/unified"),
    ]);
    const combined = cgroupViewMounts(cgroupLayout(parseCgroupMounts(COMBINED_V1), "", false), "p", "c");
    expect(combined).toContainEqual(bind("/sys/fs/cgroup/cpu,cpuacct/p/c", "/sys/fs/cgroup/cpu,cpuacct"));
    expect(combined).toContainEqual({ kind: "symlink", target: "/sys/fs/cgroup/cpu", linkTarget: "cpu,cpuacct" });
  });

  it("shows cgroup v2 alone as the container's own directory at /sys/fs/cgroup, and nothing without cgroups", () => {
    const v2 = cgroupLayout(parseCgroupMounts(V2_MOUNTINFO), "memory pids", false);
    expect(cgroupViewMounts(v2, "p", "c")).toEqual([
      { kind: "bind", source: "/sys/fs/cgroup/p/c", target: "/sys/fs/cgroup", flags: 0, readonly: true, file: false },
    ]);
    expect(cgroupViewMounts({ v1: {}, v2: null, swapAccounting: false }, "p", "c")).toEqual([]);
  });

  it("binds the generated /etc files read-only", () => {
    expect(containerMounts(etc, []).filter((m) => m.target.startsWith("/etc/"))).toEqual([
      { kind: "bind", source: "/s/c/hosts", target: "/etc/hosts", flags: 0, readonly: true, file: true },
      { kind: "bind", source: "/s/c/resolv.conf", target: "/etc/resolv.conf", flags: 0, readonly: true, file: true },
      { kind: "bind", source: "/s/c/hostname", target: "/etc/hostname", flags: 0, readonly: true, file: true },
    ]);
  });

  it("masks and write-protects runc's paths", () => {
    expect(MASKED_PATHS).toContain("/proc/kcore");
    expect(MASKED_PATHS).toContain("/sys/firmware");
    expect(MASKED_PATHS).toContain("/sys/devices/virtual/powercap"); // Docker's since CVE-2020-8694
    expect(READONLY_PATHS).toEqual(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
  });

  it("writes /etc/hosts with the hostname on the container's address", () => {
    expect(hostsFile("web-0", "10.0.0.2")).toBe("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.2\tweb-0\n");
    expect(hostsFile("web-0", null)).toContain("127.0.0.1\tweb-0\n");
  });
});

describe("seccomp profile", () => {
  const profile = dockerDefaultSeccomp();
  const allowed = new Set(profile.rules.filter((r) => r.action === "allow" && r.args.length === 0).flatMap((r) => r.names));

  it("denies with EPERM by default, on x86_64, x86 and x32", () => {
    expect(profile.defaultErrno).toBe(1);
    expect(profile.architectures).toEqual(["x86_64", "x86", "x32"]);
  });

  it.each([
    "mount", "umount2", "unshare", "setns", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "settimeofday", "clock_settime", "keyctl", "add_key", "request_key", "bpf",
    "perf_event_open", "reboot", "swapon", "pivot_root", "open_by_handle_at", "io_uring_setup", "userfaultfd",
  ])("does not allow %s", (name) => {
    expect(profile.rules.some((r) => r.action === "allow" && r.names.includes(name))).toBe(false);
  });

  it.each(["read", "write", "execve", "openat", "clone", "socket", "ptrace", "chroot", "wait4"])("allows %s", (name) => {
    expect(profile.rules.some((r) => r.action === "allow" && r.names.includes(name))).toBe(true);
  });

  it("allows clone only without namespace flags, socket only off AF_VSOCK, and makes clone3 fall back", () => {
    expect(allowed.has("clone")).toBe(false);
    expect(profile.rules).toContainEqual({ names: ["clone"], action: "allow", errno: 0, args: [{ index: 0, op: "masked_eq", value: 0x7e020000, valueTwo: 0 }] });
    expect(profile.rules).toContainEqual({ names: ["socket"], action: "allow", errno: 0, args: [{ index: 0, op: "ne", value: 40, valueTwo: 0 }] });
    expect(profile.rules).toContainEqual({ names: ["clone3"], action: "errno", errno: 38, args: [] });
  });
});

describe("capabilities", () => {
  it("keeps exactly Docker's 14", () => {
    expect(capabilityNumbers(DOCKER_DEFAULT_CAPABILITIES)).toEqual([0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31]);
    expect(capabilityNumbers(DOCKER_DEFAULT_CAPABILITIES)).not.toContain(CAPABILITY_NUMBERS.CAP_SYS_ADMIN);
    // The bounding mask the kernel shows inside (CapBnd), checked against a real container in runtime.test.ts.
    const mask = capabilityNumbers(DOCKER_DEFAULT_CAPABILITIES).reduce((m, c) => m | (1n << BigInt(c)), 0n);
    expect(mask.toString(16)).toBe("a80425fb");
  });
});

const baseSpec = {
  id: "web-0",
  rootfs: "/var/lib/berth/rootfs/web-0",
  slot: 3,
  command: { kind: "exec", argv: ["/app/server", "--port", "8080"] },
  env: { PORT: "8080" },
  memoryMb: 256,
};

describe("parseContainerSpec", () => {
  it("fills defaults", () => {
    expect(parseContainerSpec(baseSpec)).toEqual({
      ...baseSpec,
      user: "",
      workdir: "/",
      cpuWeight: 100,
      pidsMax: 1024,
      netnsPath: null,
      address: null,
    });
  });

  it.each([
    [{ id: "Web 0" }, "id"],
    [{ id: "" }, "id"],
    [{ rootfs: "relative/path" }, "rootfs"],
    [{ slot: -1 }, "slot"],
    [{ command: { kind: "exec", argv: [] } }, "command.argv"],
    [{ command: { kind: "none" } }, "command"],
    [{ env: { "A=B": "x" } }, "env.A=B"],
    [{ workdir: "app" }, "workdir"],
    [{ memoryMb: 2 }, "memoryMb"],
    [{ cpuWeight: 0 }, "cpuWeight"],
    [{ pidsMax: 0 }, "pidsMax"],
    [{ hostname: "bad_host!" }, "hostname"],
    [{ netnsPath: "run/netns/x" }, "netnsPath"],
    [{ address: "not-an-ip" }, "address"],
    [{ extra: true }, "spec"],
  ])("refuses %j naming %s", (override, field) => {
    let err: unknown;
    try {
      parseContainerSpec({ ...baseSpec, ...override });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).field).toBe(field);
  });

  it("refuses a missing start command with CF's message", () => {
    expect(() => parseContainerSpec({ ...baseSpec, command: { kind: "none" } })).toThrow("command: No start command found or specified");
  });
});

function context(overrides: Partial<RuntimeConfigContext> = {}): RuntimeConfigContext {
  return {
    initPath: "/opt/berth/berth-init",
    ids: idRangeForSlot(3),
    user: { uid: 1000, gid: 1000, additionalGids: [50], home: "/home/app" },
    layout: cgroupLayout(parseCgroupMounts(HYBRID_MOUNTINFO), "", true),
    cgroupParent: "berth",
    ioDir: "/var/lib/berth/state/web-0/io",
    etc: { hosts: "/s/hosts", resolvConf: "/s/resolv.conf", hostname: "/s/hostname" },
    log: { maxBytes: 1024, keepFiles: 2 },
    rlimits: [{ resource: 7, soft: 1024, hard: 4096 }],
    ...overrides,
  };
}

describe("toRuntimeConfig", () => {
  it("translates a spec into the addon's config", () => {
    const config = toRuntimeConfig(parseContainerSpec({ ...baseSpec, user: "app", workdir: "/app" }), context());
    expect(config).toMatchObject({
      id: "web-0",
      initPath: "/opt/berth/berth-init",
      rootfs: "/var/lib/berth/rootfs/web-0",
      hostname: "web-0",
      uidMap: [{ containerId: 0, hostId: 296_608, size: 65_536 }],
      gidMap: [{ containerId: 0, hostId: 296_608, size: 65_536 }],
      netnsPath: null,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS, "/sys/fs/cgroup"],
      ioDir: "/var/lib/berth/state/web-0/io",
      log: { maxBytes: 1024, keepFiles: 2 },
      process: {
        argv: ["/app/server", "--port", "8080"],
        env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=web-0", "HOME=/home/app", "PORT=8080"],
        cwd: "/app",
        uid: 1000,
        gid: 1000,
        additionalGids: [50],
        capabilities: capabilityNumbers(DOCKER_DEFAULT_CAPABILITIES),
        rlimits: [{ resource: 7, soft: 1024, hard: 4096 }],
      },
    });
    expect(config.cgroups.map((c) => c.path)).toEqual([
      "/sys/fs/cgroup/memory/berth/web-0",
      "/sys/fs/cgroup/cpu/berth/web-0",
      "/sys/fs/cgroup/pids/berth/web-0",
      "/sys/fs/cgroup/unified/berth/web-0",
    ]);
    expect(config.seccomp).toEqual(dockerDefaultSeccomp());
    expect(() => validate(config)).not.toThrow();
  });

  it("runs a custom command through /bin/sh -c and keeps the image's PATH when set", () => {
    expect(commandArgv({ kind: "shell", script: "echo hi && sleep 1" })).toEqual(["/bin/sh", "-c", "echo hi && sleep 1"]);
    expect(processEnv({ PATH: "/opt/bin", HOME: "/x" }, { uid: 0, gid: 0, additionalGids: [], home: "/root" }, "h")).toEqual([
      "PATH=/opt/bin",
      "HOSTNAME=h",
      "HOME=/x",
    ]);
  });

  it("joins a given network namespace, still with a sysfs of its own and its own cgroups at /sys/fs/cgroup", () => {
    const config = toRuntimeConfig(parseContainerSpec({ ...baseSpec, netnsPath: "/run/netns/web-0" }), context());
    expect(config.netnsPath).toBe("/run/netns/web-0");
    expect(config.mounts.find((m) => m.target === "/sys")).toEqual({ kind: "sysfs", target: "/sys" });
    expect(config.mounts).toContainEqual({ kind: "bind", source: "/sys/fs/cgroup/memory/berth/web-0", target: "/sys/fs/cgroup/memory", flags: 0, readonly: true, file: false });
  });
});

describe("validate", () => {
  const good = () => toRuntimeConfig(parseContainerSpec(baseSpec), context());
  it.each<[string, (c: ReturnType<typeof good>) => void, string]>([
    ["host root in the uid map", (c) => (c.uidMap = [{ containerId: 0, hostId: 0, size: 65536 }]), "uidMap: must never map host root"],
    ["host root in the gid map", (c) => (c.gidMap = [{ containerId: 0, hostId: 0, size: 1 }]), "gidMap: must never map host root"],
    ["an empty map", (c) => (c.uidMap = []), "uidMap: must map at least container root"],
    ["a map without container root", (c) => (c.uidMap = [{ containerId: 1, hostId: 5000, size: 10 }]), "uidMap: must map container root"],
    ["an unmapped run user", (c) => (c.process.uid = 70_000), "process.uid: 70000 is not mapped"],
    ["an unmapped supplementary group", (c) => (c.process.additionalGids = [90_000]), "process.additionalGids"],
    ["a relative rootfs", (c) => (c.rootfs = "rootfs"), "rootfs: must be an absolute path"],
    ["the host's root as rootfs", (c) => (c.rootfs = "/"), "rootfs: must not be the host's root"],
    ["a NUL in argv", (c) => (c.process.argv = ["a\0b"]), "process.argv[0]: must not contain NUL"],
    ["an empty argv", (c) => (c.process.argv = []), "process.argv: must name a program"],
    ["a long hostname", (c) => (c.hostname = "h".repeat(65)), "hostname"],
    ["a cgroup outside /sys/fs/cgroup", (c) => (c.cgroups = [{ path: "/tmp/x", files: [], join: true }]), "cgroups"],
    ["a bad capability", (c) => (c.process.capabilities = [64]), "process.capabilities"],
    ["a zero log cap", (c) => (c.log = { maxBytes: 0, keepFiles: 1 }), "log.maxBytes"],
    ["two sysfs mounts", (c) => c.mounts.push({ kind: "sysfs", target: "/x" }), "mounts: at most one sysfs"],
  ])("refuses %s", (_name, mutate, message) => {
    const c = good();
    mutate(c);
    expect(() => validate(c)).toThrow(RuntimeConfigError);
    expect(() => validate(c)).toThrow(message);
  });
});

describe("containerExit", () => {
  it.each([
    [{ status: 0 }, null, 0, { status: 0, signal: null, oom: false }],
    [{ status: 3 }, { reaped: true, status: 3, signal: null }, 0, { status: 3, signal: null, oom: false }],
    [{ signal: 9 }, null, 1, { status: null, signal: "SIGKILL", oom: true }],
    [{ signal: 15 }, null, 0, { status: null, signal: "SIGTERM", oom: false }],
    [null, { reaped: true, status: null, signal: 9 }, 0, { status: null, signal: "SIGKILL", oom: false }],
    [null, { reaped: false, status: null, signal: null }, 2, { status: null, signal: "SIGKILL", oom: true }],
  ] as const)("app %j, init %j, oom kills %i → %j", (recorded, init, oom, expected) => {
    expect(containerExit(recorded, init, oom)).toEqual(expected);
  });

  it("names unknown signals by number", () => {
    expect(signalName(2)).toBe("SIGINT");
    expect(signalName(99)).toBe("SIG99");
  });
});
