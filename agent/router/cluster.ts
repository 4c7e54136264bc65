/**
 * @module Running the router on every core with node:cluster.
 *
 * The primary alone long-polls the control plane and hands each table to the
 * workers over IPC, rather than every worker polling: one connection per
 * router host instead of one per core (each held poll occupies the control
 * plane), all workers switch to the same version at the same moment, a
 * (re)started worker gets the current table at once from memory, and the
 * router token stays in the primary. A table travels as JSON over the IPC
 * channel; that is microseconds per change, nothing per request.
 *
 * Connections are spread by the kernel (SCHED_NONE: all workers accept on the
 * one shared socket) instead of Node's default round robin in the primary,
 * which would route every new connection through the primary and its IPC.
 */
import cluster, { type Worker } from "node:cluster";
import { setTimeout as sleep } from "node:timers/promises";
import { Registry } from "prom-client";
import { z } from "zod";
import { routeTableSchema, type RouteTable } from "../../shared/protocol/route-table";
import type { AccessRecord } from "./access-log";
import { startAppLogShipper } from "./app-log-shipper";
import { routerConfigSchema, type RouterConfig } from "./config";
import { serveHealth } from "./health";
import type { DaemonLogger } from "./logger";
import { answerMetricsRequests, isMetricsMessage, serveMetrics, tableAgeMetrics } from "./metrics";
import { startPoller } from "./poller";
import { createRouter } from "./router";
import { watchedTableSource } from "./table-source";
import { loadTlsListener } from "./tls-certs";

/** What a worker needs: no API URL, no token. */
const workerConfigSchema = routerConfigSchema.pick({
  appLogs: true,
  listenHost: true,
  listenPort: true,
  maxAttempts: true,
  maxTunnelsPerRoute: true,
  trustedProxies: true,
  tls: true,
  timeouts: true,
});
type WorkerConfig = z.output<typeof workerConfigSchema>;
const WORKER_CONFIG_ENV = "BERTH_ROUTER_WORKER_CONFIG";

const toWorkerSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("table"), table: routeTableSchema }),
  z.strictObject({ type: z.literal("shutdown") }),
]);
type ToWorker = z.infer<typeof toWorkerSchema>;

const toPrimarySchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("ready") }),
  z.strictObject({ type: z.literal("listening"), address: z.string(), port: z.number(), tlsPort: z.number().optional() }),
  z.strictObject({ type: z.literal("applied"), version: z.number() }),
  z.strictObject({ type: z.literal("fatal"), message: z.string() }),
  // Access records for the apps' RTR lines, in the worker's clock (timeOrigin); `dropped` ones did not fit its buffer.
  z.strictObject({ type: z.literal("access"), timeOrigin: z.number(), records: z.array(z.custom<AccessRecord>()), dropped: z.number().int().min(0) }),
]);
type ToPrimary = z.infer<typeof toPrimarySchema>;

function sendToWorker(worker: Worker, message: ToWorker): void {
  if (worker.isConnected()) worker.send(message);
}

function sendToPrimary(message: ToPrimary): void {
  process.send?.(message);
}

/** Runs until SIGTERM/SIGINT, then drains every worker and exits. */
export function runPrimary(config: RouterConfig, logger: DaemonLogger): void {
  const { log } = logger;
  const workerConfig: WorkerConfig = {
    appLogs: config.appLogs,
    listenHost: config.listenHost,
    listenPort: config.listenPort,
    maxAttempts: config.maxAttempts,
    maxTunnelsPerRoute: config.maxTunnelsPerRoute,
    trustedProxies: config.trustedProxies,
    tls: config.tls,
    timeouts: config.timeouts,
  };
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // Workers get their part of the configuration, and not the token.
  const workerEnv = { [WORKER_CONFIG_ENV]: JSON.stringify(workerConfig), BERTH_ROUTER_TOKEN: "" };

  let latest: RouteTable | null = null;
  let stopping = false;
  let listeningLogged = false;
  const applied = new Map<number, number>(); // worker id → table version applied

  const fork = (): void => {
    cluster.fork(workerEnv);
  };
  const reportSync = (): void => {
    if (latest === null) return;
    const live = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined && !w.isDead());
    if (live.length === config.workers && live.every((w) => applied.get(w!.id) === latest!.version)) {
      log.info({ version: latest.version, workers: live.length }, "workers in sync");
      logger.flush();
    }
  };

  cluster.on("message", (worker, raw: unknown) => {
    if (isMetricsMessage(raw)) return; // prom-client's aggregator answers these itself
    const parsed = toPrimarySchema.safeParse(raw);
    if (!parsed.success) return log.error({ worker: worker.id }, "unexpected message from a worker");
    const message = parsed.data;
    switch (message.type) {
      case "ready":
        // Sent once the worker listens for messages: anything sent earlier could be lost.
        if (latest !== null) sendToWorker(worker, { type: "table", table: latest });
        return;
      case "listening":
        if (!listeningLogged) {
          listeningLogged = true;
          if (message.tlsPort !== undefined) log.info({ address: message.address, port: message.tlsPort }, "tls listening");
          log.info({ address: message.address, port: message.port, workers: config.workers }, "listening");
          logger.flush();
        }
        return;
      case "applied":
        applied.set(worker.id, message.version);
        return reportSync();
      case "access":
        appLogs.droppedUpstream(message.dropped);
        for (const record of message.records) appLogs.record(record, message.timeOrigin);
        return;
      case "fatal":
        log.error({ worker: worker.id, reason: message.message }, "worker cannot serve; stopping");
        process.exitCode = 1;
        return void stop();
    }
  });
  cluster.on("exit", (worker, code, signal) => {
    applied.delete(worker.id);
    if (stopping) return;
    log.error({ worker: worker.id, code, signal }, "worker died; starting another");
    fork();
  });

  // Healthy once a worker serves from a table; the primary's own state, since it alone polls and stops.
  serveHealth(config.listenHost, config.healthPort, logger, () => ({ hasTable: applied.size > 0, draining: stopping }));
  const primaryRegistry = new Registry();
  const tableAge = tableAgeMetrics(primaryRegistry);
  // The primary ships the apps' RTR lines: it holds the token and the table.
  const appLogs = startAppLogShipper(config, log, primaryRegistry);
  serveMetrics(config.listenHost, config.metricsPort, logger, [primaryRegistry], true);
  const tableSource = watchedTableSource({ apiUrl: config.apiUrl, token: config.token, requestTimeoutMs: config.timeouts.pollRequestMs }, (msg, extra) => log.warn(extra, msg));
  const poller = startPoller({
    source: tableSource.source,
    schedule: config.poll,
    log,
    onTable: (table) => {
      latest = table;
      appLogs.applyTable(table);
      tableAge.tableReceived();
      log.info({ version: table.version, routes: table.routes.length }, "route table received");
      for (const worker of Object.values(cluster.workers ?? {})) if (worker !== undefined) sendToWorker(worker, { type: "table", table });
    },
  });

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down: draining workers");
    await sleep(config.timeouts.drainWaitMs);
    tableSource.stop();
    await poller.stop();
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    // A worker stuck past its own deadline is killed; a second of slack for its exit.
    const killer = setTimeout(() => workers.forEach((w) => w.process.kill("SIGKILL")), config.timeouts.shutdownMs + 1_000);
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once("exit", () => resolve());
            sendToWorker(w, { type: "shutdown" });
          }),
      ),
    );
    clearTimeout(killer);
    await appLogs.stop();
    log.info("stopped");
    logger.flush();
    process.exit();
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
  for (let i = 0; i < config.workers; i++) fork();
}

/**
 * A worker's access records, sent to the primary in batches (one IPC message
 * per interval, not per request); at most `max` wait, more are counted.
 */
function accessRelay(intervalMs: number, max: number): { record: (r: AccessRecord) => void; flush: () => void } {
  let records: AccessRecord[] = [];
  let dropped = 0;
  const flush = (): void => {
    if (records.length === 0 && dropped === 0) return;
    sendToPrimary({ type: "access", timeOrigin: performance.timeOrigin, records, dropped });
    records = [];
    dropped = 0;
  };
  setInterval(flush, Math.min(intervalMs, 250)).unref();
  return {
    record: (r) => {
      if (records.length < max) records.push(r);
      else dropped++;
    },
    flush,
  };
}

/** A worker: serve, apply the tables the primary sends, drain when told. */
export async function runWorker(logger: DaemonLogger): Promise<void> {
  const { log } = logger;
  const config = workerConfigSchema.parse(JSON.parse(process.env[WORKER_CONFIG_ENV] ?? "{}"));
  // The primary checked these files before forking; each worker holds its own contexts.
  const tls = config.tls === undefined ? undefined : loadTlsListener(config.tls, new Date());
  const access = accessRelay(config.appLogs.intervalMs, config.appLogs.maxQueuedLines);
  const router = createRouter({ ...config, tls, log, accessRecorded: access.record });
  answerMetricsRequests();
  process.on("message", (raw: unknown) => {
    if (isMetricsMessage(raw)) return; // prom-client answers the primary's aggregator itself
    const parsed = toWorkerSchema.safeParse(raw);
    if (!parsed.success) return log.error("unexpected message from the primary");
    const message = parsed.data;
    if (message.type === "table") {
      router.applyTable(message.table);
      sendToPrimary({ type: "applied", version: message.table.version });
      return;
    }
    void router.shutdown().then(() => {
      access.flush();
      logger.flush();
      process.exit(0);
    });
  });
  // Signals go to the whole process group; the primary decides when a worker stops.
  process.on("SIGTERM", () => undefined);
  process.on("SIGINT", () => undefined);
  sendToPrimary({ type: "ready" });
  try {
    const [address, tlsAddress] = await Promise.all([router.listen(), router.listenTls()]);
    sendToPrimary({ type: "listening", address: address.address, port: address.port, tlsPort: tlsAddress?.port });
  } catch (err) {
    sendToPrimary({ type: "fatal", message: err instanceof Error ? err.message : String(err) });
    logger.flush();
    process.exit(1);
  }
}

export function isClusterWorker(): boolean {
  return cluster.isWorker;
}
