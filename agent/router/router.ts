/**
 * @module One router listener: the HTTP server, the current table, the
 * upstream pools and graceful shutdown. Where tables come from is the
 * caller's business (a poller in this process, or the cluster primary).
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { RouteTable } from "../../shared/protocol/route-table";
import type { RouterTimeouts } from "./config";
import type { ProxyContext } from "./forwarding";
import { clientAddress } from "./headers";
import { sharedRequestMetrics, type RequestMetrics } from "./metrics";
import { handleRequest } from "./proxy";
import { compileTable, type CompiledTable } from "./table";
import { proxyTrust } from "./trusted-proxies";
import { TunnelCounts } from "./tunnel-counts";
import { handleUpgrade } from "./upgrade";
import { UpstreamPools } from "./upstream-pools";

export interface RouterOptions {
  readonly listenHost: string;
  readonly listenPort: number;
  readonly maxAttempts: number;
  readonly maxTunnelsPerRoute: number;
  /** CIDRs or addresses of proxies whose X-Forwarded-* headers are kept. */
  readonly trustedProxies: readonly string[];
  readonly timeouts: RouterTimeouts;
  readonly log: Logger;
  /** Where finished requests are counted; prom-client's global registry by default. */
  readonly metrics?: RequestMetrics;
}

export interface Router {
  /** Starts accepting; resolves with the bound address (port 0 → the one taken). */
  listen(): Promise<AddressInfo>;
  /** Takes effect for the next request: an instance gone from the table gets no new traffic. */
  applyTable(table: RouteTable): void;
  /** Version of the table in use, undefined before the first. */
  readonly version: number | undefined;
  /** Requests being answered plus upgraded connections open. */
  readonly inFlight: number;
  /**
   * Stops accepting, lets requests in flight finish (their connections then
   * close) and resolves when all are done, or cuts what is left after
   * `timeouts.shutdownMs`.
   */
  shutdown(): Promise<void>;
}

export function createRouter(options: RouterOptions): Router {
  const { timeouts, log } = options;
  const metrics = options.metrics ?? sharedRequestMetrics();
  let table: CompiledTable | null = null;
  let draining = false;
  let requests = 0;
  let shutdownDone: Promise<void> | null = null;
  const upgraded = new Set<Duplex>();
  const pools = new UpstreamPools({ idleMs: timeouts.upstreamKeepAliveMs, connectMs: timeouts.connectMs });
  // Decided once per client connection, when it opens: keep-alive requests then cost a set lookup.
  const trusts = proxyTrust(options.trustedProxies);
  const trustedSockets = new WeakSet<Socket>();
  const ctx: ProxyContext = {
    table: () => table,
    pools,
    connectMs: timeouts.connectMs,
    upstreamIdleMs: timeouts.upstreamIdleMs,
    upstreamHeadersMs: timeouts.upstreamHeadersMs,
    tunnelIdleMs: timeouts.tunnelIdleMs,
    tunnels: new TunnelCounts(options.maxTunnelsPerRoute),
    maxAttempts: options.maxAttempts,
    // The only scheme this listener speaks; TLS ends in front of it, at a proxy trusted to say so.
    proto: "http",
    trusted: (socket) => trustedSockets.has(socket),
    draining: () => draining,
    requestDone: () => {
      requests--;
      // A response begun before shutdown may have left its connection in keep-alive.
      if (draining) setImmediate(() => server.closeIdleConnections());
    },
    log,
  };

  const server = http.createServer({
    keepAliveTimeout: timeouts.clientKeepAliveMs,
    headersTimeout: timeouts.clientHeadersMs,
    requestTimeout: timeouts.clientRequestMs,
    noDelay: true,
  });
  if (options.trustedProxies.length > 0) {
    server.on("connection", (socket: Socket) => {
      if (trusts(clientAddress(socket.remoteAddress))) trustedSockets.add(socket);
    });
  }
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    requests++;
    const arrived = process.hrtime.bigint();
    // "close" comes after the last byte or an abort; a response never begun counts as "other".
    res.once("close", () => metrics.observe(res.headersSent ? res.statusCode : 0, Number(process.hrtime.bigint() - arrived) / 1e9));
    handleRequest(ctx, req, res);
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => handleUpgrade(ctx, req, socket, head, upgraded));

  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host: options.listenHost, port: options.listenPort }, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    applyTable(next) {
      const compiled = compileTable(next);
      table = compiled;
      pools.retain(compiled.backendKeys);
    },
    get version() {
      return table?.version;
    },
    get inFlight() {
      return requests + upgraded.size;
    },
    shutdown() {
      shutdownDone ??= new Promise<void>((resolve) => {
        draining = true;
        const deadline = setTimeout(() => {
          log.warn({ requests, upgraded: upgraded.size }, "shutdown deadline reached; cutting what is left");
          server.closeAllConnections();
          for (const socket of upgraded) socket.destroy();
        }, timeouts.shutdownMs);
        server.close(() => {
          clearTimeout(deadline);
          pools.destroy();
          resolve();
        });
        server.closeIdleConnections();
      });
      return shutdownDone;
    },
  };
}
