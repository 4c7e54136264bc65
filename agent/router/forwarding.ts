/**
 * @module What an HTTP exchange (proxy.ts) and an upgrade tunnel (upgrade.ts)
 * share: the context they run in, header rewriting, route resolution, the
 * choice of the next instance after a failed attempt, and the access line.
 */
import { randomUUID } from "node:crypto";
import http, { type ClientRequest, type IncomingMessage, type RequestOptions } from "node:http";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { logAccess, type AccessRecord } from "./access-log";
import { clientAddress, upstreamRequestHeaders, type UpstreamRequestHeaders } from "./headers";
import { routeKey } from "./host";
import type { RouterError } from "./pages";
import { lookupRoute, pickBackend, type Backend, type CompiledTable, type Route } from "./table";
import type { TunnelCounts } from "./tunnel-counts";
import type { UpstreamPools } from "./upstream-pools";

export interface ProxyContext {
  /** The current table, null until the first one arrives. */
  readonly table: () => CompiledTable | null;
  readonly pools: UpstreamPools;
  readonly connectMs: number;
  readonly upstreamIdleMs: number;
  readonly upstreamHeadersMs: number;
  readonly tunnelIdleMs: number;
  readonly tunnels: TunnelCounts;
  readonly maxAttempts: number;
  /** The scheme clients use to reach this listener (X-Forwarded-Proto unless a trusted proxy set it). */
  readonly proto: string;
  /** Whether the peer on this client connection is a trusted proxy. */
  readonly trusted: (socket: Socket) => boolean;
  /** True while shutting down: responses then close their connection. */
  readonly draining: () => boolean;
  /** Called once per request when its response is over (finished or cut). */
  readonly requestDone: () => void;
  readonly log: Logger;
  /** Each finished request's record, for the app's RTR line (app-log-shipper.ts); none when absent. */
  readonly accessRecorded?: (record: AccessRecord) => void;
}

/** The instance stayed silent, or sent no whole response head, for too long: 504. */
export class UpstreamTimeoutError extends Error {
  readonly code = "ETIMEDOUT";
  constructor(what: string, ms: number) {
    super(`${what} within ${ms} ms`);
    this.name = "UpstreamTimeoutError";
  }
}

/** 1xx answers allowed before the final one; Go's net/http (Gorouter's) allows 5 too. */
const MAX_INFORMATIONAL = 5;

export abstract class Forwarding {
  protected readonly startedAt = performance.now();
  protected readonly fwd: UpstreamRequestHeaders;
  protected readonly host: string;
  protected route: Route | null = null;
  protected attempts = 0;
  /** The instance of the current (or last) attempt. */
  protected upstream: Backend | null = null;
  private tried: Set<Backend> | null = null;
  /** Body bytes from the client and to it, for the access record. */
  protected bytesReceived = 0;
  protected bytesSent = 0;

  constructor(
    protected readonly ctx: ProxyContext,
    protected readonly req: IncomingMessage,
    upgrade: boolean,
  ) {
    this.fwd = upstreamRequestHeaders(
      req.rawHeaders,
      { clientAddress: clientAddress(req.socket.remoteAddress), proto: ctx.proto, trusted: ctx.trusted(req.socket), newRequestId: randomUUID },
      upgrade,
    );
    this.host = routeKey(this.fwd.host);
  }

  /** The first instance to try, or the router error that answers instead. */
  protected firstBackend(): Backend | RouterError {
    const table = this.ctx.table();
    if (table === null) return "table_not_loaded";
    const route = lookupRoute(table, this.host, this.req.url);
    if (route === undefined) return "unknown_route";
    if (route.backends.length === 0) return "no_endpoints";
    this.route = route;
    return pickBackend(route, null)!;
  }

  /** Records an attempt on `backend`. */
  protected attemptOn(backend: Backend): void {
    this.attempts++;
    this.upstream = backend;
  }

  /** After the current attempt failed: another instance not tried yet, while attempts remain. */
  protected nextBackend(): Backend | undefined {
    if (this.attempts >= this.ctx.maxAttempts) return undefined;
    (this.tried ??= new Set()).add(this.upstream!);
    return pickBackend(this.route!, this.tried);
  }

  /**
   * The request to `backend` for the client's, through `via` (a pool's agent,
   * or a connection of its own), destroyed with an {@link UpstreamTimeoutError}
   * when the instance is silent for upstreamIdleMs, or when its final response
   * head has not come within upstreamHeadersMs of the request's last byte (an
   * upload may be long), so header bytes dripped under the idle timeout cannot
   * hold it forever. More than MAX_INFORMATIONAL 1xx answers are `invalid`.
   * The caller calls `headCame` when the final head has come.
   */
  protected upstreamRequest(
    backend: Backend,
    via: Pick<RequestOptions, "agent" | "createConnection">,
    invalid: (what: string) => void,
  ): { proxyReq: ClientRequest; headCame: () => void } {
    const { ctx, req } = this;
    const proxyReq = http.request({
      host: backend.address,
      port: backend.port,
      method: req.method,
      path: req.url,
      headers: this.fwd.headers,
      ...via,
      timeout: ctx.upstreamIdleMs,
    });
    proxyReq.on("timeout", () => proxyReq.destroy(new UpstreamTimeoutError("instance silent", ctx.upstreamIdleMs)));
    const ms = ctx.upstreamHeadersMs;
    let deadline: NodeJS.Timeout | undefined;
    let answered = false;
    let informational = 0;
    proxyReq.once("finish", () => {
      if (!answered) deadline = setTimeout(() => proxyReq.destroy(new UpstreamTimeoutError("no response head", ms)), ms);
    });
    proxyReq.once("close", () => clearTimeout(deadline));
    proxyReq.on("information", () => {
      if (++informational > MAX_INFORMATIONAL) invalid("too_many_informational");
    });
    const headCame = (): void => {
      answered = true;
      clearTimeout(deadline);
    };
    return { proxyReq, headCame };
  }

  protected logAccess(status: number, error: string | undefined): void {
    const { req } = this;
    const record: AccessRecord = {
      host: this.host,
      method: req.method,
      url: req.url,
      status,
      upstream: this.upstream === null ? null : this.upstream.key,
      attempts: this.attempts,
      startedAt: this.startedAt,
      now: performance.now(),
      requestId: this.fwd.requestId,
      error,
      protocol: `HTTP/${req.httpVersion}`,
      bytesReceived: this.bytesReceived,
      bytesSent: this.bytesSent,
      referer: req.headers.referer,
      userAgent: req.headers["user-agent"],
      remoteAddress: `${clientAddress(req.socket.remoteAddress)}:${req.socket.remotePort ?? 0}`,
      forwardedFor: this.fwd.forwardedFor,
      forwardedProto: this.fwd.forwardedProto,
    };
    logAccess(this.ctx.log, record);
    this.ctx.accessRecorded?.(record);
  }
}
