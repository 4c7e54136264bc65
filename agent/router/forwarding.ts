/**
 * @module What an HTTP exchange (proxy.ts) and an upgrade tunnel (upgrade.ts)
 * share: the context they run in, header rewriting, route resolution, the
 * choice of the next instance after a failed attempt, and the access line.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import { logAccess } from "./access-log";
import { clientAddress, upstreamRequestHeaders, type UpstreamRequestHeaders } from "./headers";
import { routeKey } from "./host";
import type { RouterError } from "./pages";
import { pickBackend, type Backend, type CompiledTable, type Route } from "./table";
import type { UpstreamPools } from "./upstream-pools";

export interface ProxyContext {
  /** The current table, null until the first one arrives. */
  readonly table: () => CompiledTable | null;
  readonly pools: UpstreamPools;
  readonly connectMs: number;
  readonly upstreamIdleMs: number;
  readonly maxAttempts: number;
  /** The scheme clients use to reach this listener (X-Forwarded-Proto when absent). */
  readonly proto: string;
  /** True while shutting down: responses then close their connection. */
  readonly draining: () => boolean;
  /** Called once per request when its response is over (finished or cut). */
  readonly requestDone: () => void;
  readonly log: Logger;
}

export abstract class Forwarding {
  protected readonly startedAt = performance.now();
  protected readonly fwd: UpstreamRequestHeaders;
  protected readonly host: string;
  protected route: Route | null = null;
  protected attempts = 0;
  /** The instance of the current (or last) attempt. */
  protected upstream: Backend | null = null;
  private tried: Set<Backend> | null = null;

  constructor(
    protected readonly ctx: ProxyContext,
    protected readonly req: IncomingMessage,
    upgrade: boolean,
  ) {
    this.fwd = upstreamRequestHeaders(
      req.rawHeaders,
      { clientAddress: clientAddress(req.socket.remoteAddress), proto: ctx.proto, newRequestId: randomUUID },
      upgrade,
    );
    this.host = routeKey(this.fwd.host);
  }

  /** The first instance to try, or the router error that answers instead. */
  protected firstBackend(): Backend | RouterError {
    const table = this.ctx.table();
    if (table === null) return "table_not_loaded";
    const route = table.routes.get(this.host);
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

  protected logAccess(status: number, error: string | undefined): void {
    logAccess(this.ctx.log, {
      host: this.host,
      method: this.req.method,
      url: this.req.url,
      status,
      upstream: this.upstream === null ? null : this.upstream.key,
      attempts: this.attempts,
      startedAt: this.startedAt,
      now: performance.now(),
      requestId: this.fwd.requestId,
      error,
    });
  }
}
