/**
 * The native runtime against real containers (root, user namespaces, cgroups
 * v1/v2 hybrid), on a busybox rootfs from test/support/rootfs.ts. Every
 * container gets a unique id, a private cgroup parent and its own id slot.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, rmdir, writeFile } from "node:fs/promises";
import { hostname as osHostname } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { containerCgroupPaths } from "../../agent/runtime/cgroups";
import { isNativeError } from "../../agent/native/errors";
import { idRangeForSlot } from "../../agent/runtime/ids";
import { Runtime, type Container } from "../../agent/runtime/runtime";
import type { ContainerSpecInput } from "../../agent/runtime/spec";
import { parseStat } from "../support/procs";
import { makeBusyboxRootfs } from "../support/rootfs";

// Slots far from the agent's and other suites', different per test process.
const SLOT_A = 20_000 + (process.pid % 10_000) * 2;
const SLOT_B = SLOT_A + 1;
const HOST_A = idRangeForSlot(SLOT_A).hostId;
const CGROUP_PARENT = `berth-test-${process.pid}`;

let base: string;
let rootfsA: string;
let rootfsB: string;
let runtime: Runtime;
let counter = 0;

beforeAll(async () => {
  base = await mkdtemp("/tmp/berth-runtime-");
  // The container's mapped root must traverse the path to its rootfs and /etc files.
  await chmod(base, 0o711);
  rootfsA = join(base, "rootfs-a");
  rootfsB = join(base, "rootfs-b");
  await makeBusyboxRootfs(rootfsA, HOST_A);
  await makeBusyboxRootfs(rootfsB, idRangeForSlot(SLOT_B).hostId);
  runtime = await Runtime.open({ stateDir: join(base, "state"), cgroupParent: CGROUP_PARENT, cgroupRemoveTimeoutMs: 5000 });
});

afterAll(async () => {
  // runtime is unset when beforeAll failed; the parent directories may then not exist either.
  const layout = runtime?.layout;
  for (const mount of layout ? [...Object.values(layout.v1), layout.v2?.mount] : [])
    if (mount) await rmdir(join(mount, CGROUP_PARENT)).catch(() => undefined);
  if (base) await rm(base, { recursive: true, force: true });
});

function spec(overrides: Partial<ContainerSpecInput>): ContainerSpecInput {
  return {
    id: `t${process.pid}-${++counter}`,
    rootfs: rootfsA,
    slot: SLOT_A,
    command: { kind: "exec", argv: ["/bin/true"] },
    env: {},
    memoryMb: 64,
    ...overrides,
  };
}

const sh = (script: string) => ({ command: { kind: "shell" as const, script } });

async function logs(id: string) {
  const read = (s: "stdout" | "stderr") => readFile(runtime.logPath(id, s), "utf8").catch(() => "");
  return { stdout: await read("stdout"), stderr: await read("stderr") };
}

/** Runs to completion; returns exit and output, then destroys. */
async function run(overrides: Partial<ContainerSpecInput>) {
  const c = await runtime.create(spec(overrides));
  try {
    const exit = await c.exited;
    return { exit, ...(await logs(c.id)), container: c };
  } finally {
    await c.destroy();
  }
}

describe("the app process", () => {
  it("runs as the given user, in its workdir, with its env, as /bin/sh -c", async () => {
    const r = await run({ ...sh('echo "$(id -u):$(id -g):$(id -G) $(pwd) $GREETING $HOME"'), user: "app", workdir: "/home/app", env: { GREETING: "hello" } });
    expect(r.exit).toEqual({ status: 0, signal: null, oom: false });
    expect(r.stdout).toBe("1000:1000:1000 50 /home/app hello /home/app\n");
  });

  it("execs argv directly with argv[0] looked up on the env's PATH", async () => {
    const r = await run({ command: { kind: "exec", argv: ["sh", "-c", 'echo "$PATH $(id -u):$(id -g)"'] }, env: { PATH: "/nowhere:/bin" }, user: "1000:50" });
    expect(r.exit.status).toBe(0);
    expect(r.stdout).toBe("/nowhere:/bin 1000:50\n");
  });

  it("keeps Docker's capabilities for root and none for other users, under seccomp and no_new_privs", async () => {
    const script = "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status";
    const root = await run(sh(script));
    expect(root.stdout).toContain("CapEff:\t00000000a80425fb");
    expect(root.stdout).toContain("CapBnd:\t00000000a80425fb");
    expect(root.stdout).toContain("NoNewPrivs:\t1");
    expect(root.stdout).toContain("Seccomp:\t2");
    const app = await run({ ...sh(script), user: "app" });
    expect(app.stdout).toContain("CapEff:\t0000000000000000");
  });

  it("applies the rlimits and sees only the default devices in /dev", async () => {
    const r = await run(sh("ulimit -n; ulimit -Hn; ls /dev | tr '\\n' ' '"));
    expect(r.stdout).toBe("1024\n4096\nfd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero ");
  });

  it("fails with a NativeError naming step, syscall, errno and path when argv[0] is missing, leaving nothing behind", async () => {
    const s = spec({ command: { kind: "exec", argv: ["no-such-program"] } });
    const err = await runtime.create(s).catch((e: unknown) => e);
    expect(isNativeError(err)).toBe(true);
    expect(err).toMatchObject({ name: "NativeError", step: "exec", syscall: "execve", code: "ENOENT", path: "no-such-program" });
    for (const p of containerCgroupPaths(runtime.layout, CGROUP_PARENT, s.id)) expect(existsSync(p)).toBe(false);
    expect(await runtime.list()).not.toContain(s.id);
  });

  it("fails at the cwd step when the workdir does not exist", async () => {
    const err = await runtime.create(spec({ workdir: "/does/not/exist" })).catch((e: unknown) => e);
    expect(err).toMatchObject({ step: "cwd", syscall: "chdir", code: "ENOENT", path: "/does/not/exist" });
  });

  it.each([
    ["a missing rootfs", { rootfs: "/nonexistent/rootfs" }, { step: "mount_rootfs", syscall: "mount", code: "ENOENT", path: "/nonexistent/rootfs" }],
    ["a missing network namespace", { netnsPath: "/run/netns/berth-none" }, { step: "netns", syscall: "open", code: "ENOENT", path: "/run/netns/berth-none" }],
  ] as const)("reports %s as a NativeError and cleans up", async (_name, override, expected) => {
    const s = spec(override);
    const err = await runtime.create(s).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "NativeError", ...expected });
    for (const p of containerCgroupPaths(runtime.layout, CGROUP_PARENT, s.id)) expect(existsSync(p)).toBe(false);
    expect(await runtime.list()).not.toContain(s.id);
  });

  it("refuses an unknown user before creating anything", async () => {
    const s = spec({ user: "ghost" });
    await expect(runtime.create(s)).rejects.toThrow("unable to find user ghost");
    expect(existsSync(join(base, "state", s.id))).toBe(false);
  });

  it("refuses a spec without a start command before touching anything", async () => {
    await expect(runtime.create(spec({ command: { kind: "none" } }))).rejects.toThrow("No start command found or specified");
  });
});

describe("user namespace", () => {
  it("maps container root to the slot's host range, never host root", async () => {
    const r = await run(sh("cat /proc/self/uid_map /proc/self/gid_map"));
    const lines = r.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number));
    expect(lines).toEqual([
      [0, HOST_A, 65536],
      [0, HOST_A, 65536],
    ]);
    expect(HOST_A).toBeGreaterThan(0);
  });

  it("shows root's rootfs files as root's, and files it creates are owned by the mapped range on the host", async () => {
    const r = await run({ ...sh("stat -c %u:%g /etc/passwd; touch /tmp/by-root; su app -s /bin/sh -c 'touch /tmp/by-app' || touch /tmp/by-app") });
    expect(r.stdout).toBe("0:0\n");
    const byRoot = statSync(join(rootfsA, "tmp/by-root"));
    expect([byRoot.uid, byRoot.gid]).toEqual([HOST_A, HOST_A]);
  });

  it("creates files as the run user's mapped id", async () => {
    await run({ ...sh("touch /home/app/mine"), user: "app" });
    const st = statSync(join(rootfsA, "home/app/mine"));
    expect([st.uid, st.gid]).toEqual([HOST_A + 1000, HOST_A + 1000]);
  });
});

describe("isolation from the host (container root attempts)", () => {
  it("cannot read a host file", async () => {
    const secret = join(base, "host-secret");
    await writeFile(secret, "top secret\n", { mode: 0o644 });
    const r = await run(sh(`cat ${secret}; cat /proc/1/root${secret}; cat /proc/1/cwd${secret}; echo done`));
    expect(r.stdout).toBe("done\n");
    expect(r.stdout + r.stderr).not.toContain("top secret");
  });

  it("cannot open /dev/fuse, create it, or mount FUSE", async () => {
    const r = await run(sh("ls /dev/fuse; mknod /tmp/fuse c 10 229 && cat /tmp/fuse; mkdir -p /mnt/f; mount -t fuse fuse /mnt/f; echo rc=$?"));
    expect(r.stderr).toMatch(/\/dev\/fuse: No such file or directory/);
    expect(r.stderr).toMatch(/mknod: \/tmp\/fuse: Operation not permitted/);
    expect(r.stderr).toMatch(/mount: .*(Operation not permitted|permission denied)/i);
    expect(r.stdout).toMatch(/^rc=[1-9]\d*\n$/);
  });

  it("cannot mknod a block device and read it", async () => {
    const r = await run(sh("mknod /tmp/vda b 253 0; head -c 16 /tmp/vda | wc -c"));
    expect(r.stderr).toMatch(/mknod: \/tmp\/vda: Operation not permitted/);
    expect(r.stdout.trim()).toBe("0");
  });

  // This kernel has neither /proc/sysrq-trigger nor /proc/kcore; where they exist they are read-only / masked.
  it("cannot write /proc/sysrq-trigger or /proc/sys, nor read /proc/kcore or the masked /proc files", async () => {
    const r = await run(
      sh(
        "echo h > /proc/sysrq-trigger; echo 1 > /proc/sys/vm/overcommit_memory; echo x > /proc/sys/kernel/hostname; head -c 16 /proc/kcore | wc -c; wc -c < /proc/keys; wc -c < /proc/timer_list; ls /sys/firmware | wc -l",
      ),
    );
    expect(r.stderr).toMatch(/sysrq-trigger: (Read-only file system|nonexistent directory|No such file)/);
    expect(r.stderr).toMatch(/\/proc\/sys\/vm\/overcommit_memory: Read-only file system/);
    expect(r.stderr).toMatch(/\/proc\/sys\/kernel\/hostname: Read-only file system/);
    expect(r.stdout.trim().split("\n")).toEqual(["0", "0", "0", "0"]);
    expect((await readFile("/proc/timer_list", "utf8")).length).toBeGreaterThan(0);
  });

  it("cannot load a kernel module", async () => {
    const r = await run(sh("echo notamodule > /tmp/m.ko; insmod /tmp/m.ko; echo rc=$?"));
    expect(r.stderr).toMatch(/Operation not permitted/);
    expect(r.stdout).toBe("rc=1\n");
  });

  it("cannot set the host's hostname or clock", async () => {
    const before = osHostname();
    const r = await run(sh("hostname evil-host; date -s '2001-01-01 00:00:00' >/dev/null; hostname"));
    expect(r.stderr).toMatch(/hostname: .*(Operation not permitted|sethostname)/i);
    expect(r.stderr).toMatch(/date: can't set date: Operation not permitted/);
    expect(osHostname()).toBe(before);
    expect(new Date().getFullYear()).toBeGreaterThan(2001);
  });

  it("gets an empty network namespace of its own", async () => {
    const r = await run(sh("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '"));
    expect(r.stdout).toBe("lo\n");
  });

  it("joins an existing network namespace by path, with a read-only sysfs", async () => {
    const name = `berth-rt-${process.pid}`;
    execFileSync("ip", ["netns", "add", name]);
    try {
      const nsPath = `/run/netns/${name}`;
      const r = await run({ ...sh("readlink /proc/self/ns/net; touch /sys/x; echo rc=$?"), netnsPath: nsPath });
      expect(r.stdout).toBe(`net:[${statSync(nsPath).ino}]\nrc=1\n`);
    } finally {
      execFileSync("ip", ["netns", "del", name]);
    }
  });
});

describe("generated /etc files", () => {
  it("writes hosts and hostname, and resolv.conf without loopback nameservers (else the fallback)", async () => {
    const hostResolv = join(base, "host-resolv.conf");
    await writeFile(hostResolv, "search corp.example\nnameserver 127.0.0.53\nnameserver 10.9.8.7\n");
    const rt = await Runtime.open({ stateDir: join(base, "state-etc"), cgroupParent: CGROUP_PARENT, hostResolvConf: hostResolv, fallbackNameservers: ["9.9.9.9"] });
    const script = "cat /etc/resolv.conf; hostname; cat /etc/hostname; grep web-1 /etc/hosts; echo x >> /etc/hosts";
    const c = await rt.create(spec({ ...sh(script), hostname: "web-1", address: "10.254.0.2" }));
    await c.exited;
    const out = await readFile(join(base, "state-etc", c.id, "io", "stdout.log"), "utf8");
    const err = await readFile(join(base, "state-etc", c.id, "io", "stderr.log"), "utf8");
    await c.destroy();
    expect(out).toBe("search corp.example\nnameserver 10.9.8.7\nweb-1\nweb-1\n10.254.0.2\tweb-1\n");
    expect(err).toMatch(/\/etc\/hosts: Read-only file system/);

    await writeFile(hostResolv, "nameserver 127.0.0.53\n");
    const d = await rt.create(spec(sh("cat /etc/resolv.conf")));
    await d.exited;
    expect(await readFile(join(base, "state-etc", d.id, "io", "stdout.log"), "utf8")).toBe("nameserver 9.9.9.9\n");
    await d.destroy();
  });
});

describe("between containers", () => {
  it("cannot see or signal another container's processes", async () => {
    const a = await runtime.create(spec(sh("sleep 30")));
    try {
      const b = await run({ ...sh(`ps -o pid,comm; kill -9 ${a.pid}; echo rc=$?; kill -9 -1; echo done`), rootfs: rootfsB, slot: SLOT_B });
      expect(b.stdout).not.toMatch(/sleep/);
      expect(b.stderr).toMatch(/No such process/);
      expect(b.stdout).toMatch(/rc=1\n/);
      // a survives b's kill -1.
      expect(a.signal("SIGCONT")).toBe(true);
    } finally {
      await a.destroy();
    }
    expect((await a.exited).signal).toBe("SIGKILL");
  });
});

describe("limits", () => {
  it("reports an app killed over its memory limit as OOM", async () => {
    const r = await run({ ...sh("dd if=/dev/zero of=/dev/null bs=64M count=1"), memoryMb: 16 });
    expect(r.exit).toEqual({ status: null, signal: "SIGKILL", oom: true });
  });

  it("stops a fork bomb at the pids limit with the host unaffected", async () => {
    const c = await runtime.create(spec({ ...sh("b(){ b | b & }; b; sleep 30"), pidsMax: 40 }));
    try {
      const pidsDir = containerCgroupPaths(runtime.layout, CGROUP_PARENT, c.id).find((p) => p.includes("/pids/"))!;
      // Wait until the bomb hits the ceiling, then check it holds.
      for (let i = 0; i < 200 && !(await logs(c.id)).stderr.includes("can't fork"); i++) await sleep(20);
      expect((await logs(c.id)).stderr).toMatch(/can't fork/);
      expect(Number(await readFile(join(pidsDir, "pids.current"), "utf8"))).toBeLessThanOrEqual(40);
      expect(execFileSync("/bin/echo", ["host still forks"], { encoding: "utf8" })).toBe("host still forks\n");
    } finally {
      await c.destroy();
    }
  });

  it("reports memory and CPU use from the cgroups", async () => {
    const c = await runtime.create(spec(sh("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done; sleep 30")));
    try {
      for (let i = 0; i < 250 && !(await logs(c.id)).stdout; i++) await sleep(20);
      const u = await c.usage();
      expect(u.memoryBytes).toBeGreaterThan(0);
      expect(u.cpuUsec).toBeGreaterThan(0);
    } finally {
      await c.destroy();
    }
  });

  it("applies memory, cpu and pids limits in the cgroup files", async () => {
    const c = await runtime.create(spec({ ...sh("sleep 30"), memoryMb: 48, cpuWeight: 200, pidsMax: 77 }));
    try {
      const paths = containerCgroupPaths(runtime.layout, CGROUP_PARENT, c.id);
      const file = async (ctl: string, name: string) => (await readFile(join(paths.find((p) => p.includes(`/${ctl}/`))!, name), "utf8")).trim();
      if (runtime.layout.v1.memory) {
        expect(await file("memory", "memory.limit_in_bytes")).toBe(String(48 * 1024 * 1024));
        expect(await file("cpu", "cpu.shares")).toBe("5219");
        expect(await file("pids", "pids.max")).toBe("77");
        expect((await file("memory", "cgroup.procs")).split("\n")).toContain(String(c.pid));
      }
    } finally {
      await c.destroy();
    }
  });
});

describe("init", () => {
  it("reaps orphaned zombies", async () => {
    const r = await run(sh("(sleep 0.2 &); (sleep 0.2 &); sleep 1.5; cat /proc/[0-9]*/stat | cut -d' ' -f3 | sort | uniq -c"));
    expect(r.exit.status).toBe(0);
    expect(r.stdout).not.toMatch(/ Z$/m);
  });

  it("keeps only CAP_KILL itself, and a non-root app cannot kill it", async () => {
    const c = await runtime.create(spec({ ...sh("kill -KILL 1; echo rc=$?; sleep 30"), user: "app" }));
    try {
      for (let i = 0; i < 100 && !(await logs(c.id)).stdout; i++) await sleep(20);
      expect((await logs(c.id)).stdout).toBe("rc=1\n");
      const status = await readFile(`/proc/${c.pid}/status`, "utf8");
      expect(status).toMatch(/^CapEff:\t0000000000000020$/m);
      expect(status).toMatch(/^CapBnd:\t0000000000000020$/m);
      expect(status).toMatch(/^NoNewPrivs:\t1$/m);
    } finally {
      await c.destroy();
    }
  });

  it("forwards signals to the app", async () => {
    const c = await runtime.create(spec(sh("trap 'echo got TERM; exit 3' TERM; echo ready; sleep 30 & wait")));
    try {
      for (let i = 0; i < 200 && !(await logs(c.id)).stdout; i++) await sleep(20);
      expect(c.signal("SIGTERM")).toBe(true);
      expect(await c.exited).toEqual({ status: 3, signal: null, oom: false });
      expect((await logs(c.id)).stdout).toBe("ready\ngot TERM\n");
    } finally {
      await c.destroy();
    }
  });

  it("leads a session of its own, so a signal to the agent's process group (Ctrl-C on npm start) never reaches it", async () => {
    const c = await runtime.create(spec(sh("sleep 30")));
    try {
      const { pgrp, session } = parseStat(await readFile(`/proc/${c.pid}/stat`, "utf8"));
      expect(session).toBe(c.pid);
      expect(pgrp).toBe(c.pid);
      const ours = parseStat(await readFile("/proc/self/stat", "utf8"));
      expect(pgrp).not.toBe(ours.pgrp);
    } finally {
      await c.destroy();
    }
  });

  it("caps and rotates the app's logs", async () => {
    const rt = await Runtime.open({ stateDir: join(base, "state-logs"), cgroupParent: CGROUP_PARENT, log: { maxBytes: 1000, keepFiles: 2 } });
    const c = await rt.create(spec(sh("i=0; while [ $i -lt 50 ]; do printf '%099d\\n' $i; i=$((i+1)); done")));
    await c.exited;
    const io = join(join(base, "state-logs"), c.id, "io");
    const files = (await readdir(io)).sort();
    expect(files).toEqual(["exit.json", "stderr.log", "stdout.log", "stdout.log.1", "stdout.log.2"]);
    for (const f of ["stdout.log", "stdout.log.1", "stdout.log.2"]) expect(statSync(join(io, f)).size).toBeLessThanOrEqual(1000);
    expect(await readFile(join(io, "stdout.log"), "utf8")).toMatch(/0049\n$/);
    await c.destroy();
  });
});

describe("lifecycle", () => {
  it("leaves no mounts, cgroups or processes after destroy", async () => {
    const c = await runtime.create(spec(sh("sleep 30 & sleep 30 & sleep 30")));
    const paths = containerCgroupPaths(runtime.layout, CGROUP_PARENT, c.id);
    const listProcs = async () => (await readFile(join(paths[0]!, "cgroup.procs"), "utf8")).trim().split("\n").map(Number);
    // init, the shell and its sleeps: wait for the shell to have forked them.
    for (let i = 0; i < 100 && (await listProcs()).length < 4; i++) await sleep(20);
    const procs = await listProcs();
    expect(procs.length).toBeGreaterThanOrEqual(4);
    await c.destroy();
    for (const p of paths) expect(existsSync(p)).toBe(false);
    for (const pid of procs) expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(await readFile("/proc/self/mountinfo", "utf8")).not.toContain(rootfsA);
    const ps = execFileSync("ps", ["-eo", "uid"], { encoding: "utf8" }).split("\n").map(Number);
    expect(ps.filter((u) => u >= HOST_A && u < HOST_A + 65536)).toEqual([]);
    expect(await runtime.list()).not.toContain(c.id);
    await c.destroy(); // idempotent
  });

  it("is re-adopted by a new agent process after the old one is kill -9'd, logs still flowing", async () => {
    const id = `t${process.pid}-adopt`;
    const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "../support/runtime-child.ts")], {
      env: {
        ...process.env,
        BERTH_SPEC: JSON.stringify(spec({ id, ...sh("echo before; sleep 1.5; echo after; exit 7") })),
        BERTH_STATE_DIR: join(base, "state"),
        BERTH_CGROUP_PARENT: CGROUP_PARENT,
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const pid = await new Promise<string>((resolve, reject) => {
      child.stdout.once("data", (d: Buffer) => resolve(d.toString().trim()));
      child.once("exit", (code) => reject(new Error(`child exited ${code}`)));
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const again = await Runtime.open({ stateDir: join(base, "state"), cgroupParent: CGROUP_PARENT });
    const c = (await again.adopt(id)) as Container;
    expect(String(c.pid)).toBe(pid);
    expect(await c.exited).toEqual({ status: 7, signal: null, oom: false });
    expect((await logs(id)).stdout).toBe("before\nafter\n");
    await c.destroy();
    expect(await again.adopt(id)).toBeNull();
  });
});
