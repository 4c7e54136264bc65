/**
 * Full instance start on a cell from a cached image: spec handed to an
 * InstanceRunner → layers found in the cache → rootfs mounted → network
 * namespace, veth and published port → container started → port health
 * check passing → the page fetched at cellAddress:hostPort. p50/p95 over N
 * starts (the first start, which pulls, is reported apart), and the same for
 * each phase: the driver's collaborators are wrapped with timers, so phases
 * that overlap each show their own duration.
 *
 * Usage (root): npx tsx bench/instance-start.ts [starts=20] [network pool size=2]
 */
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { CellContainerDriver } from "../agent/cell/container-driver";
import { CacheBudget } from "../agent/images/cache-budget";
import { DEFAULT_PULL_LIMITS } from "../agent/images/image-store";
import { LayerCache } from "../agent/images/layer-cache";
import { LogShipper } from "../agent/logs/shipper";
import { parseNetworkConfig } from "../agent/network/config";
import { NetworkManager } from "../agent/network/manager";
import { RootfsManager } from "../agent/rootfs/rootfs-manager";
import { Runtime } from "../agent/runtime/runtime";
import { defaultRunnerConfig, InstanceRunner } from "../agent/supervisor/runner";
import type { InstanceReport } from "../shared/protocol/instance";
import { resolveImage } from "../shared/registry/resolve";
import { registrySchemes } from "../shared/registry/session";
import { buildAndPushFixtures } from "../test/fixtures/build-images";
import { freeContainerCidr, makeCellAddress } from "../test/support/netns";
import { startRegistry } from "../test/support/registry";
import { makeSpec } from "../test/support/specs";

const N = Number(process.argv[2] ?? 20);
/** Prepared network namespaces (the agent's network_pool_size); 0 makes each one during its start. */
const POOL = Number(process.argv[3] ?? 2);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

const registry = await startRegistry();
await buildAndPushFixtures(registry.host);
const resolved = await resolveImage(`${registry.host}/httpd:latest`, { fetch, schemes: registrySchemes(registry.host, [registry.host], { canSkipTlsVerify: false }), listedRegistries: [registry.host] });
const cell = await makeCellAddress();
const state = await mkdtemp(join(tmpdir(), "berth-bench-cell-"));
await chmod(state, 0o711);
const log = pino({ level: "error" });
const cache = await LayerCache.open(join(state, "layers"));
const rootfs = await RootfsManager.open(join(state, "rootfs"));
await rootfs.prewarm(64);
const network = new NetworkManager(parseNetworkConfig({
  cellName: "bench", ifTag: "bnch", containerCidr: await freeContainerCidr(), cellAddress: cell.address,
  hostPorts: { min: 44000, max: 44999 }, runDir: join(state, "netns"), stateDir: join(state, "network"), poolSize: POOL,
}), { onPoolError: (err) => log.error({ err }, "network pool refill failed") });
await network.recover();
await network.prewarm();
const runtime = await Runtime.open({ stateDir: join(state, "containers"), cgroupParent: `berth-bench-${process.pid}` });
// Lines are only collected here (the shipper is never started: no control plane in this bench).
const logs = new LogShipper({ apiUrl: "http://127.0.0.1:1", cellGuid: "bench", credential: "none", stateDir: state, intervalMs: 1000, ackTimeoutMs: 1000, log });

/** Per start: when each phase began and ended, relative to the spec handed over. */
type Phase = "rootfs" | "network" | "runtime";
let marks: Partial<Record<`${Phase}${"Start" | "End"}`, number>> = {};
function timed<T extends object, K extends keyof T>(target: T, method: K, phase: Phase): void {
  const original = (target[method] as (...args: unknown[]) => Promise<unknown>).bind(target);
  target[method] = (async (...args: unknown[]) => {
    marks[`${phase}Start`] ??= performance.now();
    try {
      return await original(...args);
    } finally {
      marks[`${phase}End`] = performance.now();
    }
  }) as T[K];
}
timed(rootfs, "create", "rootfs");
timed(network, "setup", "network");
timed(runtime, "create", "runtime");

const driver = new CellContainerDriver({ cache, rootfs, network, runtime, logs, log, maxSlots: 64, pullLimits: DEFAULT_PULL_LIMITS, cacheBudget: new CacheBudget(cache, 1 << 30) });
driver.setRegistryAccess({ version: 1, trusted_ca_certificates: [], insecure_registries: [registry.host], cell_only_registries: [] });

interface Sample {
  total: number;
  /** Spec handed over → first of rootfs/network begun (the cached layers found). */
  layers: number;
  rootfs: number;
  network: number;
  runtime: number;
  /** Container created → RUNNING reported (the port health check). */
  probe: number;
  /** RUNNING → page fetched on cellAddress:hostPort. */
  page: number;
}

async function startOnce(): Promise<{ sample: Sample; runner: InstanceRunner }> {
  const spec = makeSpec({
    image: { ref: resolved.ref, manifest_digest: resolved.manifest_digest, layers: resolved.layers },
    command: { kind: "exec", argv: [...resolved.config.entrypoint, ...resolved.config.cmd] },
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", PORT: "8080" }, port: 8080, memory_mb: 64, disk_mb: 64,
  });
  marks = {};
  const t0 = performance.now();
  let resolveRunning: (r: InstanceReport) => void;
  const running = new Promise<InstanceReport>((r) => (resolveRunning = r));
  const runner = new InstanceRunner(spec, driver, (r) => {
    if (r.state === "RUNNING" || r.state === "CRASHED") resolveRunning(r);
  }, { ...defaultRunnerConfig, stopGraceMs: 2000 });
  runner.start();
  const report = await running;
  const tRunning = performance.now();
  if (report.state !== "RUNNING") throw new Error(`instance crashed: ${report.reason}`);
  const page = await getViaHost(cell.address, report.host_port!);
  const tPage = performance.now();
  if (page.status !== 200) throw new Error(`page answered ${page.status}`);
  const m = marks as Required<typeof marks>;
  const sample: Sample = {
    total: tPage - t0,
    layers: Math.min(m.rootfsStart, m.networkStart) - t0,
    rootfs: m.rootfsEnd - m.rootfsStart,
    network: m.networkEnd - m.networkStart,
    runtime: m.runtimeEnd - m.runtimeStart,
    probe: tRunning - m.runtimeEnd,
    page: tPage - tRunning,
  };
  return { sample, runner };
}

/**
 * GET http://address:port/ on a new connection with node:http, as the router
 * proxies. Not fetch: undici sets up a pool per origin, and every start has
 * a new host port, which costs about 5 ms more per request here.
 */
function getViaHost(address: string, port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: address, port, path: "/", agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    }).on("error", reject);
  });
}

const cold = await startOnce();
await cold.runner.stop();
const samples: Sample[] = [];
for (let i = 0; i < N; i++) {
  const { sample, runner } = await startOnce();
  samples.push(sample);
  await runner.stop();
}
const times = samples.map((s) => s.total);
const load = (await readFile("/proc/loadavg", "utf8")).split(" ").slice(0, 3).join(" ");
console.log(`instance start (cached image → health check passing → page served on cellAddress:hostPort), ${N} starts, network pool ${POOL}, load ${load}`);
console.log(`  first start (pulls the image): ${cold.sample.total.toFixed(1)} ms`);
console.log(`  p50 ${pct(times, 0.5).toFixed(1)} ms   p95 ${pct(times, 0.95).toFixed(1)} ms   (target p50 < 50 ms)`);
for (const phase of ["layers", "rootfs", "network", "runtime", "probe", "page"] as const) {
  const xs = samples.map((s) => s[phase]);
  console.log(`    ${phase.padEnd(8)} p50 ${pct(xs, 0.5).toFixed(1).padStart(5)} ms   p95 ${pct(xs, 0.95).toFixed(1).padStart(5)} ms`);
}
await rootfs.close();
await network.dispose();
await runtime.removeCgroupParents();
await cell.remove();
await registry.stop();
await rm(state, { recursive: true, force: true });
process.exit(0);
