/**
 * @module The router's configuration: one validated object, built by main.ts
 * from flags and environment, or by tests directly. Every timeout and backoff
 * is here so tests can run them in milliseconds.
 */
import os from "node:os";
import { z } from "zod";
import { DATA_PATHS, defaultDataPath } from "./data-path";

export const routerTimeoutsSchema = z.strictObject({
  /** Opening a connection to an instance; past it the attempt counts as a connect failure (retried). */
  connectMs: z.number().int().positive().default(5_000),
  /** An instance silent this long (no response yet, or a stalled body) ends the exchange: 504, or a cut client. */
  upstreamIdleMs: z.number().int().positive().default(60_000),
  /**
   * The instance's whole response head (status line and headers, after any 1xx)
   * must arrive within this of the request: 504 past it, so an instance dripping
   * header bytes cannot hold a request forever under the idle timeout.
   */
  upstreamHeadersMs: z.number().int().positive().default(60_000),
  /** An upgraded connection (WebSocket) with no byte either way for this long is closed (Gorouter's 900 s). */
  tunnelIdleMs: z.number().int().positive().default(900_000),
  /** Idle keep-alive connections to instances are closed after this (below Node's default 5 s server keep-alive). */
  upstreamKeepAliveMs: z.number().int().positive().default(4_000),
  /** Idle keep-alive connections from clients. */
  clientKeepAliveMs: z.number().int().positive().default(5_000),
  /** Receiving a client's request headers. */
  clientHeadersMs: z.number().int().positive().default(60_000),
  /** A whole client request (0 = none: uploads through the router may be long). */
  clientRequestMs: z.number().int().min(0).default(0),
  /**
   * On SIGTERM, how long the router keeps serving with /health saying 503
   * before it stops accepting, so a load balancer takes it out of rotation
   * first (Gorouter's drain_wait).
   */
  drainWaitMs: z.number().int().min(0).default(0),
  /** Graceful shutdown: requests still in flight after this are cut. */
  shutdownMs: z.number().int().positive().default(10_000),
  /** One long-poll request; longer than the control plane's 50 s hold. */
  pollRequestMs: z.number().int().positive().default(65_000),
});

export const pollScheduleSchema = z.strictObject({
  jitterMs: z.number().int().min(0).default(200),
  backoffBaseMs: z.number().int().positive().default(500),
  backoffMaxMs: z.number().int().positive().default(30_000),
});

/** The apps' RTR lines (app-log-shipper.ts): how often they are sent, and how many may wait while the control plane is away. */
export const appLogsSchema = z.strictObject({
  intervalMs: z.number().int().positive().default(1_000),
  maxQueuedLines: z.number().int().positive().default(10_000),
  maxQueuedBytes: z.number().int().positive().default(16 * 1024 * 1024),
  requestTimeoutMs: z.number().int().positive().default(10_000),
});

export const routerConfigSchema = z.strictObject({
  /** What carries requests: HAProxy driven by this daemon, or the Node proxy (data-path.ts). */
  dataPath: z.enum(DATA_PATHS).default(() => defaultDataPath()),
  /** Control plane base URL, e.g. http://127.0.0.1:8787. */
  apiUrl: z.url({ protocol: /^https?$/ }),
  /** Router token (role `router`); never logged. */
  token: z.string().min(1),
  listenHost: z.string().min(1).default("0.0.0.0"),
  /** 0 takes a free port (reported in the "listening" log line). */
  listenPort: z.number().int().min(0).max(65535).default(8080),
  /** Port of the /health endpoint for load balancers (health.ts), on listenHost; none when absent, 0 takes a free one. */
  healthPort: z.number().int().min(0).max(65535).optional(),
  /** Port of GET /metrics (Prometheus, metrics.ts), on listenHost; none when absent, 0 takes a free one. */
  metricsPort: z.number().int().min(0).max(65535).optional(),
  /**
   * Node path: worker processes; 0 serves from the main process (no
   * node:cluster). HAProxy path: its threads (0 counts as 1). Default: {@link defaultWorkers}.
   */
  workers: z.number().int().min(0).max(256).optional(),
  /** Attempts per request across distinct instances when connecting fails. */
  maxAttempts: z.number().int().min(1).max(10).default(3),
  /**
   * Upgraded connections (WebSockets) open at once per route, in each worker
   * process: past it the route's next upgrade gets a 503, so one app cannot
   * take the router's file descriptors (each tunnel holds two).
   */
  maxTunnelsPerRoute: z.number().int().positive().default(1_000),
  /**
   * Peers whose X-Forwarded-For/-Proto/-Host and Forwarded headers are
   * believed (load balancers in front of the router), as CIDRs or addresses.
   * From anyone else those headers are replaced by what the router saw.
   */
  trustedProxies: z.array(z.union([z.cidrv4(), z.cidrv6(), z.ipv4(), z.ipv6()])).default([]),
  /**
   * HTTPS beside HTTP (opt-in): port (0 takes a free one), a directory of
   * NAME.crt + NAME.key pairs chosen by SNI, and the pair served when no
   * certificate covers the name (else the handshake is refused).
   */
  tls: z
    .strictObject({
      port: z.number().int().min(0).max(65535),
      certDir: z.string().min(1),
      defaultCert: z.string().min(1).optional(),
    })
    .optional(),
  timeouts: routerTimeoutsSchema.prefault({}),
  poll: pollScheduleSchema.prefault({}),
  appLogs: appLogsSchema.prefault({}),
});

export type RouterTimeouts = z.output<typeof routerTimeoutsSchema>;
export type RouterConfig = z.output<typeof routerConfigSchema> & { readonly workers: number };
export type RouterConfigInput = z.input<typeof routerConfigSchema>;

/**
 * Workers when none are asked for. The Node path: one process per core.
 * HAProxy: one thread per core but one, which is left to the daemon (it reads
 * every access line), the apps and the system. On 2 cores under
 * bench/router.ts's load one thread cost HAProxy 33–38 µs a request and served
 * more, against 40–58 µs with two, whose threads the other processes preempt.
 */
export function defaultWorkers(dataPath: RouterConfig["dataPath"], cores: number): number {
  return dataPath === "haproxy" ? Math.max(1, cores - 1) : cores;
}

export function parseRouterConfig(input: RouterConfigInput): RouterConfig {
  const result = routerConfigSchema.safeParse(input);
  if (!result.success) throw new Error(`invalid router configuration: ${z.prettifyError(result.error)}`);
  const config = result.data;
  return { ...config, workers: config.workers ?? defaultWorkers(config.dataPath, os.availableParallelism()) };
}
