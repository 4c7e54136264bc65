/**
 * The start-up check of what a cell needs of its host: each missing feature is
 * named with the kernel that has it, each fallback is reported (checkHost, pure);
 * this kernel passes (probeHost, for real); and on a pure cgroup v2 hierarchy —
 * cgroup2 alone at /sys/fs/cgroup in a mount namespace of its own — the agent
 * sees v2 only and, since this hybrid host's v1 hierarchies hold memory, cpu and
 * pids (a controller lives on one hierarchy at a time), refuses naming them.
 */
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { checkHost, EXIT_HOST_UNFIT, kernelVersion, probeHost, type HostFeatures } from "../../agent/cell/host-check";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");

const FULL: HostFeatures = {
  kernel: "6.12.48-amd64",
  userNamespaces: true,
  overlay: true,
  lowerdirAppend: true,
  idmappedLowers: true,
  cgroups: { v1: {}, v2: { mount: "/sys/fs/cgroup", controllers: ["memory", "cpu", "pids"] }, swapAccounting: false },
};

describe("checkHost", () => {
  it("passes a pure cgroup v2 host with every feature", () => {
    expect(checkHost(FULL)).toEqual({ missing: [], fallbacks: [] });
  });

  it("passes a v1 host whose hierarchies hold the controllers", () => {
    const cgroups = { v1: { memory: "/sys/fs/cgroup/memory", cpu: "/sys/fs/cgroup/cpu", pids: "/sys/fs/cgroup/pids" }, v2: null, swapAccounting: true };
    expect(checkHost({ ...FULL, cgroups }).missing).toEqual([]);
  });

  it.each([
    ["5.10.0-30-amd64", /Linux 5\.15 or newer \(this host runs 5\.10\.0-30-amd64\)/],
    ["4.19.0", /Linux 5\.15 or newer/],
    ["garbage", /Linux 5\.15 or newer \(this host runs garbage\)/],
  ])("refuses kernel %s", (kernel, message) => {
    expect(checkHost({ ...FULL, kernel }).missing).toEqual([expect.stringMatching(message)]);
  });

  it("refuses a host without user namespaces, naming the sysctl", () => {
    expect(checkHost({ ...FULL, userNamespaces: false }).missing).toEqual([expect.stringMatching(/^user namespaces: .*user\.max_user_namespaces/)]);
  });

  it("refuses a host where no overlay mounts", () => {
    expect(checkHost({ ...FULL, overlay: false, lowerdirAppend: false, idmappedLowers: false })).toEqual({
      missing: [expect.stringMatching(/^overlayfs: .*modprobe overlay/)],
      fallbacks: [],
    });
  });

  it("refuses each cgroup controller neither v1 nor v2 offers", () => {
    const cgroups = { v1: { cpu: "/sys/fs/cgroup/cpu" }, v2: { mount: "/sys/fs/cgroup/unified", controllers: ["pids" as const] }, swapAccounting: false };
    expect(checkHost({ ...FULL, cgroups }).missing).toEqual([expect.stringMatching(/^cgroup controller memory: /)]);
  });

  it("takes Debian 12's 6.1 with the joined-lowerdir fallback", () => {
    expect(checkHost({ ...FULL, kernel: "6.1.0-28-amd64", lowerdirAppend: false })).toEqual({
      missing: [],
      fallbacks: [expect.stringMatching(/^overlay lowerdir\+ needs Linux 6\.8: .*colon-joined lowerdir/)],
    });
  });

  it("takes Ubuntu 22.04's 5.15 with both fallbacks (no overlay over idmapped layers before 5.19)", () => {
    const { missing, fallbacks } = checkHost({ ...FULL, kernel: "5.15.0-126-generic", lowerdirAppend: false, idmappedLowers: false });
    expect(missing).toEqual([]);
    expect(fallbacks).toEqual([expect.stringMatching(/Linux 6\.8/), expect.stringMatching(/^overlay over idmapped layers needs Linux 5\.19: .*shifted ids/)]);
  });

  it("reads kernel versions", () => {
    expect(kernelVersion("6.18.44-fc-v1272")).toEqual([6, 18]);
    expect(kernelVersion("5.15.0-126-generic")).toEqual([5, 15]);
    expect(kernelVersion("x")).toBeNull();
  });
});

describe("this host", () => {
  it("has every feature, each tried for real", async () => {
    const host = await probeHost();
    expect(host).toMatchObject({ userNamespaces: true, overlay: true, lowerdirAppend: true, idmappedLowers: true });
    expect(checkHost(host)).toEqual({ missing: [], fallbacks: [] });
  });

  it("seen as a pure cgroup v2 host (cgroup2 alone in a mount namespace), the agent refuses naming the controllers v1 holds here", async () => {
    const script = 'umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$0" dist/agent/main.js check-host';
    const r = await run("unshare", ["--mount", "--propagation", "private", "sh", "-c", script, process.execPath], { cwd: ROOT }).then(
      (ok) => ({ code: 0, stdout: ok.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );
    expect(r.stdout).toContain("cgroups: v1 none; v2 /sys/fs/cgroup (no controllers of ours)");
    for (const c of ["memory", "cpu", "pids"]) expect(r.stdout).toContain(`missing: cgroup controller ${c}: neither a cgroup v1 hierarchy nor the cgroup2 root offers it`);
    expect(r.stdout).toContain("this host cannot run Berth cells");
    expect(r.code).toBe(EXIT_HOST_UNFIT);
  });
});
