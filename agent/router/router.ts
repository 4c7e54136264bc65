/**
 * @module One router listener: the HTTP server, the current table, the
 * upstream pools and graceful shutdown. Where tables come from is the
 * caller's business (a poller in this process, or the cluster primary).
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { RouteTable } from "../../shared/protocol/route-table";
import type { AccessRecord } from "./access-log";
import type { RouterTimeouts } from "./config";
import type { ProxyContext } from "./forwarding";
import { clientAddress } from "./headers";
import { sharedRequestMetrics, type RequestMetrics } from "./metrics";
import { handleRequest } from "./proxy";
import { compileTable, type CompiledTable } from "./table";
import { certificateFor, type TlsListener } from "./tls-certs";
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
  /** HTTPS beside HTTP, when configured; requests are routed the same way, with X-Forwarded-Proto https. */
  readonly tls?: TlsListener | undefined;
  readonly log: Logger;
  /** Where finished requests are counted; prom-client's global registry by default. */
  readonly metrics?: RequestMetrics;
  /** Each finished request's access record, for the apps' RTR lines. */
  readonly accessRecorded?: (record: AccessRecord) => void;
}

export interface Router {
  /** Starts accepting; resolves with the bound address (port 0 → the one taken). */
  listen(): Promise<AddressInfo>;
  /** Starts accepting HTTPS when configured; resolves with its bound address, or undefined. */
  listenTls(): Promise<AddressInfo | undefined>;
  /**
   * Takes effect for the next request once the promise resolves (at once on
   * the Node path): an instance gone from the table gets no new traffic.
   * Tables are applied in the order given; a failure is logged, not thrown.
   */
  applyTable(table: RouteTable): Promise<void>;
  /** Version of the table in use, undefined before the first. */
  readonly version: number | undefined;
  /** Requests being answered plus upgraded connections open. */
  inFlight(): Promise<number>;
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
    // The scheme the client spoke to this listener; the HTTPS one below overrides it.
    proto: "http",
    trusted: (socket) => trustedSockets.has(socket),
    draining: () => draining,
    requestDone: () => {
      requests--;
      // A response begun before shutdown may have left its connection in keep-alive.
      if (draining) setImmediate(() => servers.forEach((s) => s.closeIdleConnections()));
    },
    log,
    accessRecorded: options.accessRecorded,
  };

  const serverOptions = {
    keepAliveTimeout: timeouts.clientKeepAliveMs,
    headersTimeout: timeouts.clientHeadersMs,
    requestTimeout: timeouts.clientRequestMs,
    noDelay: true,
  };
  const server = http.createServer(serverOptions);
  const tls = options.tls;
  const tlsServer =
    tls === undefined
      ? undefined
      : https.createServer({
          ...serverOptions,
          // A client without SNI gets the default certificate, if any; without one the handshake fails.
          ...(tls.fallback?.pem ?? {}),
          SNICallback: (servername, cb) => {
            const cert = certificateFor(tls.certs, servername, tls.fallback);
            if (cert === undefined) return cb(new Error(`no certificate for ${servername}`), undefined);
            cb(null, cert.context);
          },
        });
  // Trust is decided per connection, on the socket requests arrive on: the TLS one for HTTPS.
  const serve = (target: http.Server, proxy: ProxyContext, connectionEvent: "connection" | "secureConnection"): void => {
    if (options.trustedProxies.length > 0) {
      target.on(connectionEvent, (socket: Socket) => {
        if (trusts(clientAddress(socket.remoteAddress))) trustedSockets.add(socket);
      });
    }
    target.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      requests++;
      const arrived = process.hrtime.bigint();
      // "close" comes after the last byte or an abort; a response never begun counts as "other".
      res.once("close", () => metrics.observe(res.headersSent ? res.statusCode : 0, Number(process.hrtime.bigint() - arrived) / 1e9));
      handleRequest(proxy, req, res);
    });
    target.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => handleUpgrade(proxy, req, socket, head, upgraded));
  };
  serve(server, ctx, "connection");
  if (tlsServer !== undefined) serve(tlsServer, { ...ctx, proto: "https" }, "secureConnection");
  const listenOn = (target: http.Server, port: number): Promise<AddressInfo> =>
    new Promise((resolve, reject) => {
      target.once("error", reject);
      target.listen({ host: options.listenHost, port }, () => {
        target.off("error", reject);
        resolve(target.address() as AddressInfo);
      });
    });
  const servers = tlsServer === undefined ? [server] : [server, tlsServer];

  return {
    listen() {
      return listenOn(server, options.listenPort);
    },
    listenTls() {
      return tlsServer === undefined || tls === undefined ? Promise.resolve(undefined) : listenOn(tlsServer, tls.port);
    },
    applyTable(next) {
      const compiled = compileTable(next);
      table = compiled;
      pools.retain(compiled.backendKeys);
      return Promise.resolve();
    },
    get version() {
      return table?.version;
    },
    inFlight() {
      return Promise.resolve(requests + upgraded.size);
    },
    shutdown() {
      shutdownDone ??= new Promise<void>((resolve) => {
        draining = true;
        const deadline = setTimeout(() => {
          log.warn({ requests, upgraded: upgraded.size }, "shutdown deadline reached; cutting what is left");
          for (const s of servers) s.closeAllConnections();
          for (const socket of upgraded) socket.destroy();
        }, timeouts.shutdownMs);
        // A server that never listened closes at once (with an error, which changes nothing here).
        const closed = servers.map((s) => new Promise<void>((done) => s.close(() => done())));
        void Promise.all(closed).then(() => {
          clearTimeout(deadline);
          pools.destroy();
          resolve();
        });
        for (const s of servers) s.closeIdleConnections();
      });
      return shutdownDone;
    },
  };
}
