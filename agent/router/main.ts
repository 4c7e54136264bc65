/**
 * @module `berth-router`: the router as a daemon.
 *
 *   BERTH_ROUTER_TOKEN=... node dist/agent/router/main.js --api-url http://127.0.0.1:8787 --port 8080
 *
 * Requests go through HAProxy, which this daemon configures and drives
 * (haproxy/), where it is installed; `--data-path node` serves them from the
 * Node proxy in-process instead (router.ts, cluster.ts).
 *
 * These flags have an environment twin (BERTH_ROUTER_DATA_PATH, BERTH_API_URL, BERTH_ROUTER_HOST,
 * BERTH_ROUTER_PORT, BERTH_ROUTER_WORKERS, BERTH_ROUTER_HEALTH_PORT, BERTH_ROUTER_METRICS_PORT,
 * BERTH_ROUTER_TRUSTED_PROXIES, BERTH_ROUTER_TLS_PORT, BERTH_ROUTER_TLS_CERT_DIR,
 * BERTH_ROUTER_TLS_DEFAULT_CERT); the token comes only from
 * BERTH_ROUTER_TOKEN or --token-file, never from argv (visible in ps).
 * Logs are JSON lines on stdout; the first "listening" line has the port.
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Command } from "commander";
import { register } from "prom-client";
import { integer } from "../../shared/flags";
import { parseRouterConfig, type RouterConfig, type RouterConfigInput } from "./config";
import { isClusterWorker, runPrimary, runWorker } from "./cluster";
import { serveHealth } from "./health";
import { serveMetrics, tableAgeMetrics } from "./metrics";
import { createDaemonLogger, type DaemonLogger } from "./logger";
import type { AccessRecord } from "./access-log";
import { startAppLogShipper } from "./app-log-shipper";
import { startPoller } from "./poller";
import { createHaproxyRouter } from "./haproxy/haproxy-router";
import { createRouter, type Router } from "./router";
import { watchedTableSource } from "./table-source";
import { loadTlsListener, TlsCertError, type TlsListener } from "./tls-certs";

interface Flags {
  dataPath?: string;
  apiUrl?: string;
  tokenFile?: string;
  listen?: string;
  port?: number;
  healthPort?: number;
  metricsPort?: number;
  workers?: number;
  maxAttempts?: number;
  maxTunnelsPerRoute?: number;
  trustedProxies?: string;
  tlsPort?: number;
  tlsCertDir?: string;
  tlsDefaultCert?: string;
  connectTimeoutMs?: number;
  upstreamTimeoutMs?: number;
  upstreamHeadersTimeoutMs?: number;
  tunnelIdleTimeoutMs?: number;
  drainWaitMs?: number;
  shutdownTimeoutMs?: number;
  pollJitterMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  appLogIntervalMs?: number;
  appLogMaxQueuedLines?: number;
}

/** "10.0.0.0/8, 192.0.2.7" → entries; the schema then checks each. */
function list(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  return value.split(",").map((entry) => entry.trim());
}

function envInteger(name: string): number | undefined {
  const value = process.env[name];
  if (value === undefined || value === "") return undefined;
  return integer(value);
}

/** HTTPS is opt-in: both the port and the directory, or neither (a half is a mistake, reported). */
function tlsFromFlags(flags: Flags, env: NodeJS.ProcessEnv): RouterConfigInput["tls"] {
  const port = flags.tlsPort ?? envInteger("BERTH_ROUTER_TLS_PORT");
  const certDir = flags.tlsCertDir ?? env.BERTH_ROUTER_TLS_CERT_DIR;
  const defaultCert = flags.tlsDefaultCert ?? env.BERTH_ROUTER_TLS_DEFAULT_CERT;
  if (port === undefined && certDir === undefined && defaultCert === undefined) return undefined;
  if (port === undefined || certDir === undefined) throw new Error("--tls-port and --tls-cert-dir go together");
  return { port, certDir, defaultCert };
}

/** Flags over environment over defaults; the schema then says what is wrong, field by field. */
function configFromFlags(flags: Flags, env: NodeJS.ProcessEnv): RouterConfigInput {
  const token = flags.tokenFile !== undefined ? readFileSync(flags.tokenFile, "utf8").trim() : env.BERTH_ROUTER_TOKEN;
  const input: RouterConfigInput = {
    dataPath: (flags.dataPath ?? env.BERTH_ROUTER_DATA_PATH) as RouterConfigInput["dataPath"],
    apiUrl: flags.apiUrl ?? env.BERTH_API_URL ?? "",
    token: token ?? "",
    listenHost: flags.listen ?? env.BERTH_ROUTER_HOST,
    listenPort: flags.port ?? envInteger("BERTH_ROUTER_PORT"),
    healthPort: flags.healthPort ?? envInteger("BERTH_ROUTER_HEALTH_PORT"),
    metricsPort: flags.metricsPort ?? envInteger("BERTH_ROUTER_METRICS_PORT"),
    workers: flags.workers ?? envInteger("BERTH_ROUTER_WORKERS"),
    maxAttempts: flags.maxAttempts,
    maxTunnelsPerRoute: flags.maxTunnelsPerRoute,
    trustedProxies: list(flags.trustedProxies ?? env.BERTH_ROUTER_TRUSTED_PROXIES),
    tls: tlsFromFlags(flags, env),
    timeouts: {
      connectMs: flags.connectTimeoutMs,
      upstreamIdleMs: flags.upstreamTimeoutMs,
      upstreamHeadersMs: flags.upstreamHeadersTimeoutMs,
      tunnelIdleMs: flags.tunnelIdleTimeoutMs,
      drainWaitMs: flags.drainWaitMs,
      shutdownMs: flags.shutdownTimeoutMs,
    },
    poll: { jitterMs: flags.pollJitterMs, backoffBaseMs: flags.backoffBaseMs, backoffMaxMs: flags.backoffMaxMs },
    appLogs: { intervalMs: flags.appLogIntervalMs, maxQueuedLines: flags.appLogMaxQueuedLines },
  };
  return input;
}

/** The HAProxy data path, or the Node proxy in this process. */
function routerFor(config: RouterConfig, tls: TlsListener | undefined, log: DaemonLogger["log"], accessRecorded: (record: AccessRecord) => void): Router {
  if (config.dataPath === "haproxy") return createHaproxyRouter({ ...config, tls, log, accessRecorded, threads: Math.max(1, config.workers) });
  return createRouter({ ...config, tls, log, accessRecorded });
}

/** HAProxy, or the Node proxy with workers = 0: poll and serve from this one process. */
function runSingle(config: RouterConfig, tls: TlsListener | undefined, logger: DaemonLogger): void {
  const { log } = logger;
  const appLogs = startAppLogShipper(config, log, register);
  const router = routerFor(config, tls, log, (r) => appLogs.record(r));
  let stopping = false;
  serveHealth(config.listenHost, config.healthPort, logger, () => ({ hasTable: router.version !== undefined, draining: stopping }));
  const tableAge = tableAgeMetrics(register);
  serveMetrics(config.listenHost, config.metricsPort, logger, [register], false);
  const tableSource = watchedTableSource({ apiUrl: config.apiUrl, token: config.token, requestTimeoutMs: config.timeouts.pollRequestMs }, (msg, extra) => log.warn(extra, msg));
  const poller = startPoller({
    source: tableSource.source,
    schedule: config.poll,
    log,
    onTable: (table) => {
      appLogs.applyTable(table);
      // Logged once in effect: on the HAProxy path that is after the runtime API took it.
      void router.applyTable(table).then(() => {
        tableAge.tableReceived();
        log.info({ version: table.version, routes: table.routes.length }, "route table received");
      });
    },
  });
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down: draining");
    await sleep(config.timeouts.drainWaitMs);
    tableSource.stop();
    await poller.stop();
    await router.shutdown();
    await appLogs.stop();
    log.info("stopped");
    logger.flush();
    process.exit();
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
  Promise.all([router.listen(), router.listenTls()]).then(
    ([address, tlsAddress]) => {
      if (tlsAddress !== undefined) log.info({ address: tlsAddress.address, port: tlsAddress.port }, "tls listening");
      log.info({ address: address.address, port: address.port, workers: 0 }, "listening");
      logger.flush();
    },
    (err: unknown) => {
      log.error({ err }, "cannot listen");
      logger.flush();
      process.exit(1);
    },
  );
}

function loadConfig(program: Command): RouterConfig {
  try {
    return parseRouterConfig(configFromFlags(program.opts<Flags>(), process.env));
  } catch (err) {
    return program.error(err instanceof Error ? err.message : String(err), { exitCode: 2 });
  }
}

/** Certificates are checked before serving: a bad one stops the daemon at start, named. */
function loadTls(program: Command, config: RouterConfig): TlsListener | undefined {
  if (config.tls === undefined) return undefined;
  try {
    return loadTlsListener(config.tls, new Date());
  } catch (err) {
    if (err instanceof TlsCertError) return program.error(`berth-router: ${err.message}`, { exitCode: 2 });
    throw err;
  }
}

function main(): void {
  if (isClusterWorker()) {
    void runWorker(createDaemonLogger("worker"));
    return;
  }
  const program = new Command("berth-router")
    .description("Berth's router: proxies HTTP and WebSocket by Host to running app instances")
    .option("--data-path <haproxy|node>", "what carries requests: HAProxy driven by this daemon, or the Node proxy (env BERTH_ROUTER_DATA_PATH; default haproxy when installed)")
    .option("--api-url <url>", "control plane base URL (env BERTH_API_URL)")
    .option("--token-file <path>", "file holding the router token (else env BERTH_ROUTER_TOKEN)")
    .option("--listen <host>", "address to listen on (env BERTH_ROUTER_HOST; default 0.0.0.0)")
    .option("--port <n>", "port; 0 takes a free one (env BERTH_ROUTER_PORT; default 8080)", integer)
    .option("--health-port <n>", "port of GET /health for load balancers; 0 takes a free one (env BERTH_ROUTER_HEALTH_PORT; default none)", integer)
    .option("--metrics-port <n>", "port of GET /metrics for Prometheus; 0 takes a free one (env BERTH_ROUTER_METRICS_PORT; default none)", integer)
    .option("--workers <n>", "HAProxy threads, or with --data-path node worker processes (0 = none) (env BERTH_ROUTER_WORKERS; default: HAProxy one per core but one, at least one; node one per core)", integer)
    .option("--max-attempts <n>", "instances tried per request when connecting fails (default 3)", integer)
    .option("--max-tunnels-per-route <n>", "WebSockets open at once per route and worker (default 1000)", integer)
    .option("--tls-port <n>", "HTTPS port beside HTTP; 0 takes a free one (env BERTH_ROUTER_TLS_PORT; default none)", integer)
    .option("--tls-cert-dir <dir>", "NAME.crt + NAME.key PEM pairs, chosen by SNI against each certificate's SANs (env BERTH_ROUTER_TLS_CERT_DIR)")
    .option("--tls-default-cert <name>", "pair served when no certificate covers the SNI name (env BERTH_ROUTER_TLS_DEFAULT_CERT; default: refuse the handshake)")
    .option("--trusted-proxies <cidrs>", "comma-separated CIDRs whose X-Forwarded-* headers are kept (env BERTH_ROUTER_TRUSTED_PROXIES; default none)")
    .option("--connect-timeout-ms <n>", "connecting to an instance (default 5000)", integer)
    .option("--upstream-timeout-ms <n>", "an instance silent this long fails the request (default 60000)", integer)
    .option("--upstream-headers-timeout-ms <n>", "an instance's response head must arrive within this (default 60000)", integer)
    .option("--tunnel-idle-timeout-ms <n>", "a WebSocket idle this long both ways is closed (default 900000)", integer)
    .option("--drain-wait-ms <n>", "on SIGTERM, keep serving this long with /health at 503 first (default 0)", integer)
    .option("--shutdown-timeout-ms <n>", "graceful shutdown deadline (default 10000)", integer)
    .option("--poll-jitter-ms <n>", "random delay before re-polling the route table (default 200)", integer)
    .option("--backoff-base-ms <n>", "first backoff while the control plane is unreachable (default 500)", integer)
    .option("--backoff-max-ms <n>", "longest backoff (default 30000)", integer)
    .option("--app-log-interval-ms <n>", "how often the apps' access lines (RTR) are sent to the control plane (default 1000)", integer)
    .option("--app-log-max-queued-lines <n>", "access lines kept while the control plane is away; past it new ones are dropped and counted (default 10000)", integer)
    .showHelpAfterError();
  program.parse();
  const config = loadConfig(program);
  const tls = loadTls(program, config);
  if (config.workers === 0 || config.dataPath === "haproxy") runSingle(config, tls, createDaemonLogger("single"));
  else runPrimary(config, createDaemonLogger("primary"));
}

main();
