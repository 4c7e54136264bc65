/**
 * @module The router's Prometheus metrics (prom-client), Gorouter's figures:
 * requests by status class, request latency, and the age of the route table
 * in use (a router cut off from the control plane serves an ever older one).
 *
 * Under node:cluster each worker counts its own requests in prom-client's
 * global registry and the primary, which alone polls, holds the table age;
 * the primary's /metrics sums the workers' (AggregatorRegistry, over IPC)
 * and appends its own.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, register } from "prom-client";
import type { DaemonLogger } from "./logger";
import { startMetricsServer } from "../metrics/serve";

/** "2xx" … "5xx"; anything else (a response never begun) is "other". */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other";
}

export interface RequestMetrics {
  /** One finished request: its status and how long from arrival to the last byte, in seconds. */
  observe(status: number, seconds: number): void;
  /** Access lines the data path could not hand the daemon (HAProxy's pipe full): requests neither logged nor shipped. */
  linesDropped(count: number): void;
}

let shared: RequestMetrics | undefined;

/** The per-request figures in prom-client's global registry (where a cluster worker's aggregator looks), made once per process. */
export function sharedRequestMetrics(): RequestMetrics {
  return (shared ??= requestMetrics(register));
}

/** The per-request figures, in `registry`. */
export function requestMetrics(registry: Registry): RequestMetrics {
  const requests = new Counter({ name: "berth_router_requests_total", help: "Requests answered, by status class", labelNames: ["status_class"], registers: [registry] });
  const latency = new Histogram({
    name: "berth_router_request_duration_seconds",
    help: "Time from a request's arrival to its response's end",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const dropped = new Counter({
    name: "berth_router_access_lines_dropped_total",
    help: "Access lines HAProxy dropped because the daemon read them too late: requests neither logged nor shipped as RTR lines",
    registers: [registry],
  });
  return {
    observe(status, seconds) {
      requests.inc({ status_class: statusClass(status) });
      latency.observe(seconds);
    },
    linesDropped: (count) => dropped.inc(count),
  };
}

/** The primary's own figures: seconds since the last route table (absent before the first). */
export function tableAgeMetrics(registry: Registry, now: () => number = Date.now): { tableReceived(): void } {
  let last: number | undefined;
  new Gauge({
    name: "berth_router_route_table_age_seconds",
    help: "Seconds since the last route table arrived from the control plane",
    registers: [registry],
    collect() {
      if (last !== undefined) this.set((now() - last) / 1000);
    },
  });
  return { tableReceived: () => void (last = now()) };
}

/** In a cluster worker: answer the primary's requests for this process's figures (prom-client attaches that listener when an aggregator is made). */
export function answerMetricsRequests(): void {
  new AggregatorRegistry();
}

/** Whether an IPC message is prom-client's own (cluster metrics requests and replies), not the router's. */
export function isMetricsMessage(message: unknown): boolean {
  return typeof message === "object" && message !== null && typeof (message as { type?: unknown }).type === "string" && (message as { type: string }).type.startsWith("prom-client:");
}

/**
 * Serves /metrics when a port is configured: `registries` rendered one after
 * another, plus the cluster workers' sums when `cluster` is set. A port it
 * cannot have stops the daemon, as for /health.
 */
export function serveMetrics(host: string, port: number | undefined, logger: DaemonLogger, registries: Registry[], cluster: boolean): void {
  if (port === undefined) return;
  const aggregator = cluster ? new AggregatorRegistry() : null;
  const render = async () => {
    const parts = await Promise.all([aggregator ? aggregator.clusterMetrics() : "", ...registries.map((r) => r.metrics())]);
    return { contentType: register.contentType, body: parts.filter((p) => p !== "").join("\n") };
  };
  startMetricsServer(host, port, render).then(
    ({ address }) => {
      logger.log.info({ address: address.address, port: address.port }, "metrics listening");
      logger.flush();
    },
    (err: unknown) => {
      logger.log.error({ err }, "cannot listen for /metrics");
      logger.flush();
      process.exit(1);
    },
  );
}
