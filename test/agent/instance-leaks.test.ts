/**
 * Whole instances on a real cell, started and stopped the way the agent does
 * (InstanceRunner → CellContainerDriver: image store → rootfs → network →
 * runtime) with the fixture httpd image, and the host compared before and
 * after: veths, addresses, the cell's nft rules and port map, mounts, loop
 * devices, cgroups on every hierarchy, processes, the network records (host
 * port reservations), the rootfs, runtime and layer-cache state. A normal
 * stop, a stop past the grace period, a crash and starts that fail halfway
 * must each leave the host exactly as it was — without and with a pool of
 * prepared network namespaces.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { CellContainerDriver } from "../../agent/cell/container-driver";
import { teardownCell } from "../../agent/cell/teardown";
import type { NetworkManager } from "../../agent/network/manager";
import type { RootfsManager } from "../../agent/rootfs/rootfs-manager";
import { UpperPool } from "../../agent/rootfs/upper-pool";
import { InstanceRunner, type RunnerConfig } from "../../agent/supervisor/runner";
import type { InstanceReport, InstanceSpec } from "../../shared/protocol/instance";
import { HTTPD_PAGE, HTTPD_PORT } from "../fixtures/images";
import { openTestCell, resolveHttpd, TEST_DISK_MB, httpdSpec as specOf, type HttpdImage } from "../support/cell";
import { cellHostState, type CellHostScope, type CellHostState } from "../support/cell-host";
import { freeContainerCidr, makeCellAddress, uniqueTag, type CellAddress } from "../support/netns";

const registry = inject("registry");
const runnerConfig: RunnerConfig = { startProbeFirstMs: 2, startProbeIntervalMs: 20, stopGraceMs: 600, shutdownDelayMs: 0, timeScale: 1 };

let dir: string;
let cellName: string;
let cell: CellAddress;
let scope: CellHostScope;
let httpd: HttpdImage;
let rootfs: RootfsManager;
let network: NetworkManager;
let driver: CellContainerDriver;
let before: CellHostState;

/** The host now, once both pools have finished refilling (a refill in flight is neither leak nor spare yet). */
async function snapshot(): Promise<CellHostState> {
  await Promise.all([rootfs.prewarm(TEST_DISK_MB), network.prewarm()]);
  return cellHostState(scope, network.spares().map((s) => s.hostIfname));
}

const httpdSpec = (overrides: Partial<InstanceSpec> = {}) => specOf(httpd, overrides);

interface Started {
  runner: InstanceRunner;
  reports: InstanceReport[];
  /** Resolves with the first report in one of `states`. */
  reach(...states: string[]): Promise<InstanceReport>;
}

function start(spec: InstanceSpec): Started {
  const reports: InstanceReport[] = [];
  const waiters: { states: string[]; resolve: (r: InstanceReport) => void }[] = [];
  const runner = new InstanceRunner(spec, driver, (r) => {
    reports.push(r);
    for (const w of waiters) if (w.states.includes(r.state)) w.resolve(r);
  }, runnerConfig);
  runner.start();
  return {
    runner,
    reports,
    reach: (...states) => {
      const seen = reports.find((r) => states.includes(r.state));
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ states, resolve }));
    },
  };
}

async function page(hostPort: number): Promise<string> {
  const res = await fetch(`http://${cell.address}:${hostPort}/`, { signal: AbortSignal.timeout(5000) });
  return res.text();
}

/** Polls until the host is back to `expected` (a crash is reaped in the background), or returns the last state seen. */
async function settlesTo(expected: CellHostState, timeoutMs = 10_000): Promise<CellHostState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await snapshot();
    if (JSON.stringify(now) === JSON.stringify(expected) || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.sequential.each([0, 2])("instances on a real cell (network pool of %i) leave the host as they found it", (networkPool) => {
  beforeAll(async () => {
    httpd = await resolveHttpd(registry.host);
    dir = await mkdtemp(join(tmpdir(), "berth-leaks-"));
    cell = await makeCellAddress();
    const tag = uniqueTag(4);
    const min = 40000 + Math.floor(Math.random() * 20000);
    cellName = `lk-${tag}`;
    ({ driver, rootfs, network, scope } = await openTestCell({
      name: cellName, stateDir: dir, cgroupParent: `berth-leaks-${tag}`, cellAddress: cell.address, containerCidr: await freeContainerCidr(),
      // Two host ports: the third concurrent instance runs out of them (a start failing at the network).
      hostPorts: { min, max: min + 1 }, registryHost: registry.host, networkPool,
    }));
    // The first start pulls the image into the cache, which keeps it (by design): pull before the snapshot.
    const warm = start(httpdSpec());
    expect((await warm.reach("RUNNING", "CRASHED")).state).toBe("RUNNING");
    await warm.runner.stop();
    before = await snapshot();
  }, 120_000);

  afterAll(async () => {
    await rootfs?.close();
    await network?.dispose();
    // This process owns the cell: its teardown removes the rest (cgroup parents, state dir).
    if (scope) await teardownCell({ name: cellName, state_dir: dir, cgroup_parent: scope.cgroupParent });
    await cell?.remove();
  });

  it("the snapshot sees an instance's veth, address, port element, mounts, cgroups, processes and records", async () => {
    const a = start(httpdSpec());
    const running = await a.reach("RUNNING", "CRASHED");
    expect(running.state).toBe("RUNNING");
    const during = await snapshot();
    expect(during.links).toHaveLength(before.links.length + 1);
    expect(during.addresses).toHaveLength(before.addresses.length + 1);
    expect(during.nft).toContain(`${running.host_port} : `);
    expect(during.mounts.filter((m) => m.includes(a.runner.spec.instance_guid)).length).toBeGreaterThanOrEqual(2); // overlay, lower
    expect(during.cgroups.filter((c) => c.endsWith(a.runner.spec.instance_guid)).length).toBeGreaterThanOrEqual(3);
    expect(during.processes.some((p) => p.endsWith(" httpd") || p.endsWith(" busybox"))).toBe(true);
    expect(during.files).toContain(`network/containers/${a.runner.spec.instance_guid}.json`);
    expect(during.layerHolders.some((h) => h.endsWith(a.runner.spec.instance_guid))).toBe(true);
    await a.runner.stop();
    expect(await snapshot()).toEqual(before);
  });

  it("two instances serve on cellAddress:hostPort; a SIGTERM stop and a stop past the grace period (SIGKILL) leave nothing", async () => {
    const polite = start(httpdSpec());
    // The shell ignores TERM and exec keeps it ignored in httpd: only the SIGKILL after the grace period ends it.
    const stubborn = start(httpdSpec({ command: { kind: "shell", script: `trap '' TERM; exec /bin/busybox httpd -f -p ${HTTPD_PORT} -h /www` } }));
    const [p, s] = await Promise.all([polite.reach("RUNNING", "CRASHED"), stubborn.reach("RUNNING", "CRASHED")]);
    expect([p.state, s.state]).toEqual(["RUNNING", "RUNNING"]);
    expect(p.host_port).not.toBe(s.host_port);
    expect(await page(p.host_port!)).toBe(HTTPD_PAGE);
    expect(await page(s.host_port!)).toBe(HTTPD_PAGE);

    let t0 = Date.now();
    await polite.runner.stop();
    expect(Date.now() - t0).toBeLessThan(runnerConfig.stopGraceMs);
    expect(polite.reports.at(-1)!.state).toBe("STOPPED");
    t0 = Date.now();
    await stubborn.runner.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(runnerConfig.stopGraceMs - 20);
    expect(stubborn.reports.at(-1)!.state).toBe("STOPPED");
    expect(await snapshot()).toEqual(before);
  });

  it("a crashed instance (its container killed from the host) is reaped without a stop, and its stop adds nothing", async () => {
    const c = start(httpdSpec());
    expect((await c.reach("RUNNING", "CRASHED")).state).toBe("RUNNING");
    // The container's init, from the runtime's state file: SIGKILL to it ends the whole pid namespace.
    const { pid } = JSON.parse(await readFile(join(dir, "containers", c.runner.spec.instance_guid, "state.json"), "utf8")) as { pid: number };
    process.kill(pid, "SIGKILL");
    const crashed = await c.reach("CRASHED");
    expect(crashed.reason).toMatch(/killed by signal SIGKILL/);
    expect(await settlesTo(before)).toEqual(before);
    await c.runner.stop();
    expect(await snapshot()).toEqual(before);
  });

  it("a start whose command does not exist fails after rootfs, network and cgroups were made, and leaves nothing", async () => {
    const f = start(httpdSpec({ command: { kind: "exec", argv: ["/no/such/app"] } }));
    const failed = await f.reach("CRASHED", "RUNNING");
    expect(failed.state).toBe("CRASHED");
    expect(failed.reason).toMatch(/no\/such\/app/);
    expect(await snapshot()).toEqual(before);
    await f.runner.stop();
    expect(await snapshot()).toEqual(before);
  });

  it("a stop that arrives while the start is still under way (at several points of it) leaves nothing", async () => {
    for (const delayMs of [0, 5, 15, 30, 60, 120]) {
      const s = start(httpdSpec());
      await new Promise((r) => setTimeout(r, delayMs));
      await s.runner.stop();
      expect(s.reports.at(-1)!.state).toBe("STOPPED");
      expect(await snapshot(), `stopped ${delayMs} ms after the start`).toEqual(before);
    }
  });

  it("a start that runs out of host ports while its rootfs is mounted leaves nothing, and the running ones are untouched", async () => {
    const running = [start(httpdSpec()), start(httpdSpec())];
    for (const r of running) expect((await r.reach("RUNNING", "CRASHED")).state).toBe("RUNNING");
    const full = await snapshot();
    const third = start(httpdSpec());
    const failed = await third.reach("CRASHED", "RUNNING");
    expect(failed.state).toBe("CRASHED");
    expect(failed.reason).toMatch(/no free host port/);
    expect(await snapshot()).toEqual(full);
    await third.runner.stop();
    for (const r of running) await r.runner.stop();
    expect(await snapshot()).toEqual(before);
  });
});

describe("the rootfs pool closed right after a take (an agent shutting down mid-start)", () => {
  it("keeps no spare filesystem mounted: the refill the take deferred does not start after close", async () => {
    const poolDir = await mkdtemp(join(tmpdir(), "berth-leaks-pool-"));
    const mountedInPool = async () =>
      (await readFile("/proc/self/mountinfo", "utf8")).split("\n").map((l) => l.split(" ")[4]).filter((m): m is string => m?.startsWith(`${poolDir}/`) ?? false);
    const pool = await UpperPool.open(poolDir, new Set());
    try {
      const taken = await pool.take(8);
      await pool.close();
      await new Promise((r) => setImmediate(r)); // the deferred refill's turn
      await pool.prewarm(8); // waits for any fill in flight
      expect(await mountedInPool()).toEqual([taken.mountpoint]);
    } finally {
      // Whatever is mounted, the taken one or leaked spares, so a failure leaves nothing either.
      for (const m of await mountedInPool()) await pool.discard({ mountpoint: m, image: `${m}.img` });
      await rm(poolDir, { recursive: true, force: true });
    }
  });
});
