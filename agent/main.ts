/**
 * @module The cell agent daemon: `node dist/agent/main.js --config cell.json [flags]` (built by `npm run build`; `node --import tsx agent/main.ts` in development).
 * Registers once, then long-polls, runs containers and reports. SIGTERM and
 * SIGINT stop the agent but leave containers running for the next one to adopt.
 * `node dist/agent/main.js teardown --config cell.json` decommissions the host of a
 * drained cell whose agent has stopped (agent/cell/teardown.ts); `check-host`
 * says whether this host can run cells (agent/cell/host-check.ts).
 */
import { chmod, stat, statfs } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Command } from "commander";
import { integer } from "../shared/flags";
import { pino } from "pino";
import { retryDelay } from "./cell/backoff";
import { CellAgent } from "./cell/agent";
import { CellMetrics } from "./cell/metrics";
import { startMetricsServer, type MetricsServer } from "./metrics/serve";
import { defaultRunnerConfig } from "./supervisor/runner";
import { CellContainerDriver } from "./cell/container-driver";
import { CacheBudget, cacheBudgetBytes } from "./images/cache-budget";
import { DEFAULT_PULL_LIMITS } from "./images/image-store";
import { cellHostLayout } from "./cell/host-layout";
import { checkHost, EXIT_HOST_UNFIT, HostUnfit, probeHost, runCheckHost } from "./cell/host-check";
import { ControlPlaneClient } from "./cell/control-plane";
import { loadOrRegister } from "./cell/identity";
import { stageOnCell } from "./cell/staging";
import { teardownCell } from "./cell/teardown";
import { loadAgentConfig, loadTeardownConfig, type AgentConfig } from "./config";
import { LayerCache } from "./images/layer-cache";
import { cellLine } from "./supervisor/cell-lines";
import { LogShipper } from "./logs/shipper";
import { parseNetworkConfig } from "./network/config";
import { NetworkManager } from "./network/manager";
import { RootfsManager } from "./rootfs/rootfs-manager";
import { Runtime } from "./runtime/runtime";

function parseFlags(argv: string[]) {
  const p = new Command("berth-agent")
    .option("--config <file>", "JSON config file")
    .option("--api <url>", "control plane URL")
    .option("--enrollment-token <token>", "one-time enrollment token")
    .option("--name <name>", "cell name")
    .option("--zone <zone>", "availability zone")
    .option("--address <ip>", "the cell's address (never loopback)")
    .option("--state-dir <dir>", "state directory")
    .option("--memory-mb <n>", "memory capacity", integer)
    .option("--disk-mb <n>", "disk capacity", integer)
    .option("--containers <n>", "container slots", integer)
    .option("--port-min <n>", "lowest host port", integer)
    .option("--port-max <n>", "highest host port", integer)
    .option("--container-cidr <cidr>", "cell-local container range")
    .option("--cgroup-parent <name>", "cgroup directory for this agent's containers")
    .option("--heartbeat-ms <n>", "heartbeat interval", integer)
    .option("--bulk-sync-ms <n>", "the longest a heartbeat goes without listing the instances and their usage (default 30000)", integer)
    .option("--time-scale <x>", "shrink health-check timing (tests)", Number)
    .option("--metrics-port <n>", "port of GET /metrics for Prometheus on --address; 0 takes a free one (default none)", integer)
    .option("--stop-grace-ms <n>", "stop signal (the image's STOPSIGNAL, else SIGTERM) → SIGKILL grace", integer)
    .option("--shutdown-delay-ms <n>", "a running instance's stop → its stop signal, while routers take it out of their tables (default 1000)", integer)
    .parse(argv);
  const o = p.opts();
  const capacity = o.memoryMb !== undefined || o.diskMb !== undefined || o.containers !== undefined
    ? { memory_mb: o.memoryMb ?? 4096, disk_mb: o.diskMb ?? 16384, containers: o.containers ?? 64 }
    : undefined;
  return {
    file: o.config as string | undefined,
    overrides: {
      api_url: o.api, enrollment_token: o.enrollmentToken, name: o.name, zone: o.zone, address: o.address,
      state_dir: o.stateDir, capacity, container_cidr: o.containerCidr, cgroup_parent: o.cgroupParent,
      heartbeat_interval_ms: o.heartbeatMs, bulk_sync_interval_ms: o.bulkSyncMs, time_scale: o.timeScale, stop_grace_ms: o.stopGraceMs, shutdown_delay_ms: o.shutdownDelayMs, metrics_port: o.metricsPort,
      port_range: o.portMin !== undefined && o.portMax !== undefined ? { min: o.portMin, max: o.portMax } : undefined,
    },
  };
}

/** Every ancestor of the state dir must let others search it (o+x), or no container can start. */
async function checkTraversable(dir: string): Promise<void> {
  for (let d = dir; ; d = dirname(d)) {
    const mode = (await stat(d)).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(`${d} (mode ${(mode & 0o777).toString(8)}) is not searchable by others: containers' mapped root users could not reach their root filesystems under it; chmod o+x ${d} or choose another --state-dir`);
    }
    if (d === dirname(d)) return;
  }
}

export async function startAgent(config: AgentConfig) {
  // Containers' mapped root users must traverse the directories the agent makes
  // (rootfs, /etc bind sources); an inherited umask such as 077 would lock them out.
  process.umask(0o022);
  const log = pino({ level: config.log_level, base: { cell: config.name }, redact: ["credentials", "*.password", "authorization"] });
  // Before enrolling: a host that cannot run containers must not join the fleet.
  const host = await probeHost();
  const check = checkHost(host);
  if (check.missing.length > 0) throw new HostUnfit(check.missing);
  for (const fallback of check.fallbacks) log.warn({ kernel: host.kernel }, fallback);
  let identity;
  for (let attempt = 0; ; attempt++) {
    try {
      identity = await loadOrRegister(config);
      break;
    } catch (e) {
      const delay = retryDelay(attempt);
      log.warn({ err: (e as Error).message, retryInMs: delay }, "registration failed");
      if (!config.enrollment_token || /enrollment token|unreadable/.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  log.info({ guid: identity.guid }, "cell registered");
  // Containers' mapped root users must traverse the state dir to reach their
  // rootfs and /etc bind sources (mkdtemp and umask 077 would make it 0700).
  await chmod(config.state_dir, 0o711);
  await checkTraversable(dirname(config.state_dir));
  const client = new ControlPlaneClient(config.api_url, identity.guid, identity.credential);
  const paths = cellHostLayout(config);
  const cache = await LayerCache.open(paths.layers);
  const cacheFs = await statfs(paths.layers);
  const rootfs = await RootfsManager.open(paths.rootfs, { idmappedMounts: host.idmappedLowers, lowerdirAppend: host.lowerdirAppend });
  const network = new NetworkManager(
    parseNetworkConfig({
      cellName: paths.cellName,
      ifTag: paths.ifTag,
      containerCidr: config.container_cidr,
      cellAddress: config.address,
      hostPorts: config.port_range,
      runDir: paths.netnsRunDir,
      stateDir: paths.networkState,
      denyNetworks: config.deny_networks,
      allowNetworks: config.allow_networks,
      poolSize: config.network_pool_size,
    }),
    { onPoolError: (err) => log.warn({ err: (err as Error).message }, "network pool refill failed") },
  );
  const recovered = await network.recover();
  log.info({ adopted: recovered.adopted.length, discarded: recovered.discarded.length }, "network recovered");
  const runtime = await Runtime.open({ stateDir: paths.containers, cgroupParent: config.cgroup_parent });
  const logs = new LogShipper({
    apiUrl: config.api_url, cellGuid: identity.guid, credential: identity.credential, stateDir: config.state_dir,
    intervalMs: config.log_ship_interval_ms, ackTimeoutMs: 10_000, log,
  });
  const metrics = config.metrics_port !== undefined ? new CellMetrics() : undefined;
  const driver = new CellContainerDriver({
    metrics,
    cache, rootfs, network, runtime, logs, log,
    maxSlots: config.capacity.containers,
    pullLimits: DEFAULT_PULL_LIMITS,
    cacheBudget: new CacheBudget(cache, cacheBudgetBytes(config.layer_cache_max_bytes, cacheFs.blocks * cacheFs.bsize)),
  });
  const agent = new CellAgent(
    {
      stateDir: config.state_dir,
      capacity: config.capacity,
      heartbeatIntervalMs: config.heartbeat_interval_ms,
      bulkSyncIntervalMs: config.bulk_sync_interval_ms,
      pollJitterMs: 50,
      backoff: { baseMs: 250, maxMs: 10_000 },
      runner: { ...defaultRunnerConfig, stopGraceMs: config.stop_grace_ms, shutdownDelayMs: config.shutdown_delay_ms, timeScale: config.time_scale },
    },
    {
      client, driver, log,
      cachedLayers: async () => cache.cachedDigests(),
      onDesiredSet: (set) => driver.setRegistryAccess(set.registry_access),
      stage: (task, access) => stageOnCell(task, access),
      metrics,
      // CELL lines ride the app's log socket with its APP lines: one shipper.
      instanceEvent: (spec, event) =>
        logs.cellLine({ instanceGuid: spec.instance_guid, appGuid: spec.app_guid, index: spec.index }, cellLine(identity.guid, spec.instance_guid, event)),
    },
  );
  let metricsServer: MetricsServer | undefined;
  if (metrics && config.metrics_port !== undefined) {
    metrics.watch({ states: () => [...agent.instances.values()].map((r) => r.current), cacheBytes: () => cache.totalBytes() });
    metricsServer = await startMetricsServer(config.address, config.metrics_port, () => metrics.render());
    log.info({ address: metricsServer.address.address, port: metricsServer.address.port }, "metrics listening");
  }
  // Before re-adoption: a container created by an agent killed before it recorded it would run, unknown, for ever.
  for (const orphan of await driver.stopOrphans())
    log.warn({ instance: orphan.id, killedPids: orphan.pids }, "stopped an unrecorded container and removed its cgroups, network and root filesystem");
  const watch = client.watchDesired((msg, extra) => log.warn(extra, msg));
  await agent.start();
  logs.start();
  log.info("cell agent running");
  return {
    agent,
    async shutdown() {
      watch.stop();
      await metricsServer?.close();
      await agent.shutdown();
      await logs.stop();
      // Spare upper filesystems hold loop devices; containers' own stay mounted.
      await rootfs.close();
      log.info("cell agent stopped; containers keep running");
    },
  };
}

/** `main.ts teardown [--config FILE] [--name N] [--state-dir DIR] [--cgroup-parent P]`: decommissions the cell's host. */
async function runTeardown(argv: string[]): Promise<number> {
  const o = new Command("berth-agent teardown")
    .description("remove every host resource of a drained cell whose agent has stopped (refused while anything runs)")
    .option("--config <file>", "the agent's JSON config file (its name, state_dir and cgroup_parent are used)")
    .option("--name <name>", "cell name")
    .option("--state-dir <dir>", "state directory")
    .option("--cgroup-parent <name>", "cgroup directory of this agent's containers")
    .parse(argv, { from: "user" })
    .opts();
  try {
    const config = await loadTeardownConfig(o.config, { name: o.name, state_dir: o.stateDir, cgroup_parent: o.cgroupParent });
    const report = await teardownCell(config);
    const left = report.leftInStateDir.length > 0 ? `; left in ${config.state_dir}: ${report.leftInStateDir.join(", ")}` : "";
    console.log(`cell ${config.name} torn down (remains of ${report.removedContainers.length} stopped containers removed)${left}`);
    return 0;
  } catch (e) {
    console.error(`teardown: ${(e as Error).message}`);
    return 1;
  }
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain && process.argv[2] === "teardown") {
  process.exitCode = await runTeardown(process.argv.slice(3));
} else if (isMain && process.argv[2] === "check-host") {
  process.exitCode = await runCheckHost((line) => console.log(line));
} else if (isMain) {
  const flags = parseFlags(process.argv);
  const config = await loadAgentConfig(flags.file, flags.overrides);
  const running = await startAgent(config).catch((e: unknown) => {
    if (!(e instanceof HostUnfit)) throw e;
    console.error(e.message);
    process.exit(EXIT_HOST_UNFIT);
  });
  const stop = async () => {
    await running.shutdown();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
