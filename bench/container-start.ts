/**
 * Container start, Berth vs runc vs crun: from a prepared busybox rootfs to
 * "/bin/true has run and exited", N times each, p50 and ratios.
 *
 * Equivalent configs: user namespace on the same id range (the rootfs is
 * chowned into it), new mount/pid/uts/ipc/cgroup namespaces and an empty
 * network namespace, the same mounts, masked and read-only paths, Docker's 14
 * capabilities, no_new_privs, the Docker-default seccomp rules, NOFILE, and
 * memory/cpu/pids limits. crun refuses this v1/v2 hybrid as is, so it runs
 * under `unshare -m` after unmounting /sys/fs/cgroup/unified there. runc and
 * crun are timed inside one bash loop with $EPOCHREALTIME (no fork per
 * sample); Berth is timed in-process around create() → exited.
 *
 * Usage: npx tsx bench/container-start.ts [iterations=30]
 */
import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CAPABILITY_NUMBERS, DOCKER_DEFAULT_CAPABILITIES } from "../agent/runtime/capabilities";
import { weightToShares } from "../agent/runtime/cgroups";
import { idRangeForSlot } from "../agent/runtime/ids";
import { MASKED_PATHS, READONLY_PATHS } from "../agent/runtime/mounts";
import { Runtime } from "../agent/runtime/runtime";
import { dockerDefaultSeccomp } from "../agent/runtime/seccomp";
import { makeBusyboxRootfs } from "../test/support/rootfs";

const N = Number(process.argv[2] ?? 30);
const SLOT = 60_000;
const MEMORY_MB = 64;
const PIDS = 1024;
const WEIGHT = 100;

function p50(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

const OCI_OP: Record<string, string> = {
  ne: "SCMP_CMP_NE",
  lt: "SCMP_CMP_LT",
  le: "SCMP_CMP_LE",
  eq: "SCMP_CMP_EQ",
  ge: "SCMP_CMP_GE",
  gt: "SCMP_CMP_GT",
  masked_eq: "SCMP_CMP_MASKED_EQ",
};
const OCI_ARCH: Record<string, string> = { x86_64: "SCMP_ARCH_X86_64", x86: "SCMP_ARCH_X86", x32: "SCMP_ARCH_X32" };

/** The same container as an OCI runtime-spec config.json. */
function ociConfig(rootfs: string, hostId: number, cgroupsPath: string) {
  const caps = DOCKER_DEFAULT_CAPABILITIES.filter((c) => c in CAPABILITY_NUMBERS);
  const seccomp = dockerDefaultSeccomp();
  const idMap = [{ containerID: 0, hostID: hostId, size: 65536 }];
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ["/bin/true"],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
      cwd: "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 4096, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: rootfs, readonly: false },
    hostname: "bench",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    ],
    linux: {
      uidMappings: idMap,
      gidMappings: idMap,
      namespaces: ["pid", "network", "ipc", "uts", "mount", "user", "cgroup"].map((type) => ({ type })),
      cgroupsPath,
      resources: {
        memory: { limit: MEMORY_MB * 1024 * 1024, swap: MEMORY_MB * 1024 * 1024 },
        cpu: { shares: weightToShares(WEIGHT) },
        pids: { limit: PIDS },
      },
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
      seccomp: {
        defaultAction: "SCMP_ACT_ERRNO",
        defaultErrnoRet: seccomp.defaultErrno,
        architectures: seccomp.architectures.map((a) => OCI_ARCH[a]),
        syscalls: seccomp.rules.map((r) => ({
          names: r.names,
          action: r.action === "allow" ? "SCMP_ACT_ALLOW" : "SCMP_ACT_ERRNO",
          ...(r.action === "errno" ? { errnoRet: r.errno } : {}),
          args: r.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo, op: OCI_OP[a.op] })),
        })),
      },
    },
  };
}

/** Runs `tool run` N times inside one bash loop and returns per-run milliseconds. */
function timeOci(cmd: string, wrapper: string[]): number[] {
  const script = `
    set -e
    ${cmd.startsWith("crun") ? "umount /sys/fs/cgroup/unified" : ""}
    for i in $(seq 1 ${N}); do
      s=$EPOCHREALTIME
      ${cmd} bench-$$-$i >/dev/null
      e=$EPOCHREALTIME
      echo "$s $e"
    done`;
  const out = execFileSync(wrapper[0]!, [...wrapper.slice(1), "bash", "-c", script], { encoding: "utf8" });
  return out
    .trim()
    .split("\n")
    .map((l) => {
      const [s, e] = l.split(" ").map(Number);
      return (e! - s!) * 1000;
    });
}

async function main() {
  const base = await mkdtemp("/tmp/berth-bench-");
  await chmod(base, 0o711);
  const rootfs = join(base, "rootfs");
  const hostId = idRangeForSlot(SLOT).hostId;
  await makeBusyboxRootfs(rootfs, hostId);
  const parent = `berth-bench-${process.pid}`;
  try {
    const runtime = await Runtime.open({ stateDir: join(base, "state"), cgroupParent: parent });
    const berth: number[] = [];
    let cold = 0;
    for (let i = 0; i < N + 1; i++) {
      const t0 = performance.now();
      const c = await runtime.create({ id: `b${i}`, rootfs, slot: SLOT, command: { kind: "exec", argv: ["/bin/true"] }, env: {}, memoryMb: MEMORY_MB, cpuWeight: WEIGHT, pidsMax: PIDS });
      const exit = await c.exited;
      const t1 = performance.now();
      if (exit.status !== 0) throw new Error(`berth run ${i} exited ${JSON.stringify(exit)}`);
      await c.destroy();
      // The first run compiles the seccomp profile, once per agent process: reported apart.
      if (i > 0) berth.push(t1 - t0);
      else cold = t1 - t0;
    }

    const results: Array<[string, number[]]> = [["berth", berth]];
    for (const tool of ["runc", "crun"]) {
      const bundle = join(base, tool);
      await mkdir(bundle);
      await writeFile(join(bundle, "config.json"), JSON.stringify(ociConfig(rootfs, hostId, `/${parent}-${tool}/c`)));
      const state = join(base, `${tool}-state`);
      const cmd = `${tool} --root ${state} run --bundle ${bundle}`;
      try {
        results.push([tool, timeOci(cmd, tool === "crun" ? ["unshare", "-m", "--propagation", "private"] : ["env"])]);
      } catch (e) {
        console.error(`${tool}: failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }

    const berthP50 = p50(berth);
    console.log(`container start → /bin/true exited, p50 of ${N} runs (load average ${execFileSync("cat", ["/proc/loadavg"], { encoding: "utf8" }).split(" ").slice(0, 3).join(" ")})`);
    console.log(`berth  first run (compiles the seccomp profile once per agent): ${cold.toFixed(1)} ms`);
    for (const [tool, xs] of results) {
      const ratio = tool === "berth" ? "" : `   berth/${tool} = ${(berthP50 / p50(xs)).toFixed(2)}x`;
      console.log(`${tool.padEnd(6)} p50 ${p50(xs).toFixed(1).padStart(7)} ms   min ${Math.min(...xs).toFixed(1).padStart(7)} ms${ratio}`);
    }
  } finally {
    for (const h of ["memory", "cpu", "pids", "unified"])
      for (const suffix of ["", "-runc", "-crun"]) await rmdir(`/sys/fs/cgroup/${h}/${parent}${suffix}`).catch(() => undefined);
    await rm(base, { recursive: true, force: true });
  }
}

await main();
