/**
 * @module Proxying one HTTP request: Host → route → instance (round robin),
 * with retries on connect failures and the router's own 404/502/503/504.
 *
 * Written on node:http rather than http-proxy-3 because the retry rule needs
 * to control when the client's body starts flowing upstream: it is piped only
 * once a connection to the instance is open, so a refused or reset connect has
 * consumed nothing and the same request can go to another instance.
 *
 * When is a failed attempt retried (on another instance, at most maxAttempts)?
 * - The connection was never established (refused, reset, unreachable, connect
 *   timeout): nothing reached the instance.
 * - A request without body whose method is safe (GET, HEAD, OPTIONS, TRACE)
 *   failed before any response: the instance died or closed the connection;
 *   replaying it elsewhere is harmless.
 * - A reused keep-alive connection failed before any response, for an
 *   idempotent request without body (PUT, DELETE too): the instance closed an
 *   idle connection just as the request went out, the race Node's http docs
 *   describe for `request.reusedSocket`.
 * Anything else fails the request: 502 (504 on a timeout) while the client
 * has no response headers yet; once it has, its connection is destroyed, the
 * only way to tell it the body is incomplete.
 *
 * An instance is a tenant's code and may answer anything. What Node's parser
 * refuses is an upstream error like any other; what it lets through but no
 * client may be sent (a reason phrase with control characters, a status below
 * 100, a 101 to a request that asked for no upgrade, 1xx answers without end)
 * is an invalid response: 502, not retried (the instance did answer), and
 * never an exception that would take the router process, and every other
 * tenant's requests on it, down.
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { CLIENT_CLOSED_REQUEST, errorCode } from "./access-log";
import { Forwarding, UpstreamTimeoutError, type ProxyContext } from "./forwarding";
import { clientResponseHeaders } from "./headers";
import { sendPage, type RouterError } from "./pages";
import type { Backend } from "./table";
import { isConnectFailure } from "./upstream-pools";

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);
const SAFE = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

/** Upgrade and keep-alive are the caller's: this handles ordinary requests only. */
export function handleRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  new Exchange(ctx, req, res).start();
}

class Exchange extends Forwarding {
  private proxyReq: http.ClientRequest | null = null;
  private responded = false;
  private error: string | undefined;

  constructor(
    ctx: ProxyContext,
    req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    super(ctx, req, false);
  }

  start(): void {
    if (this.ctx.draining()) this.res.shouldKeepAlive = false;
    this.res.once("close", () => this.onClientClose());
    const first = this.firstBackend();
    if (typeof first === "string") return this.fail(first);
    this.attempt(first);
  }

  private attempt(backend: Backend): void {
    this.attemptOn(backend);
    const { ctx, req } = this;
    const { proxyReq, headCame } = this.upstreamRequest(backend, { agent: ctx.pools.agentFor(backend) }, (what) => this.invalidResponse(what));
    this.proxyReq = proxyReq;
    proxyReq.on("response", (proxyRes) => {
      headCame();
      this.onResponse(proxyRes);
    });
    // Node hands over the connection of a 101 only to an "upgrade" listener; without one the request would hang.
    proxyReq.on("upgrade", (_res: IncomingMessage, socket: Socket) => {
      socket.destroy();
      this.invalidResponse("unrequested_upgrade");
    });
    proxyReq.on("error", (err) => this.onUpstreamError(err, proxyReq.reusedSocket));
    if (!this.fwd.hasBody) {
      // The request is complete now; nothing of the client's is consumed if connecting fails.
      proxyReq.end();
      return;
    }
    // The body flows only once a connection is open, so a failed connect leaves it unread for the next attempt.
    proxyReq.once("socket", (socket: Socket) => {
      if (socket.connecting) socket.once("connect", () => this.sendBody(proxyReq));
      else this.sendBody(proxyReq);
    });
  }

  private sendBody(proxyReq: http.ClientRequest): void {
    // The body flows once, to the one attempt that connected: counted as it goes.
    this.req.on("data", (chunk: Buffer) => void (this.bytesReceived += chunk.length));
    this.req.pipe(proxyReq);
  }

  private onResponse(proxyRes: IncomingMessage): void {
    const { res } = this;
    try {
      res.writeHead(proxyRes.statusCode!, proxyRes.statusMessage, clientResponseHeaders(proxyRes.rawHeaders));
    } catch (err) {
      // Node's writer refuses what its parser let through (ERR_INVALID_CHAR, ERR_HTTP_INVALID_STATUS_CODE).
      return this.invalidResponse(errorCode(err as Error));
    }
    this.responded = true;
    // By hand rather than pipe(): three listeners instead of pipe's eight, on every request.
    proxyRes.on("data", (chunk: Buffer) => {
      this.bytesSent += chunk.length;
      if (!res.write(chunk)) proxyRes.pause();
    });
    res.on("drain", () => proxyRes.resume());
    proxyRes.once("end", () => res.end());
    proxyRes.once("close", () => {
      // The instance went away mid-body: the client must not take a short body for a whole one.
      if (!proxyRes.complete) {
        this.error ??= "upstream_aborted";
        res.destroy();
      }
    });
  }

  /** The instance answered what no client may be sent: the router's 502 instead, and its connection closed. */
  private invalidResponse(what: string): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    this.fail("endpoint_failure", `invalid_response: ${what}`);
    this.proxyReq?.destroy();
  }

  private onUpstreamError(err: Error, reused: boolean): void {
    // Ended: the client has its whole answer (or the router's page) already.
    if (this.res.destroyed || this.res.writableEnded) return;
    if (this.responded) {
      this.error = errorCode(err);
      this.res.destroy();
      return;
    }
    if (this.retryable(isConnectFailure(err), reused)) {
      const next = this.nextBackend();
      if (next !== undefined) return this.attempt(next);
    }
    this.fail(err instanceof UpstreamTimeoutError ? "endpoint_timeout" : "endpoint_failure", errorCode(err));
  }

  private retryable(connectFailed: boolean, reused: boolean): boolean {
    if (connectFailed) return true;
    if (this.fwd.hasBody) return false;
    const method = this.req.method ?? "";
    // A safe request (no body) that failed before any response changed nothing
    // worth keeping: another instance may answer it, as when one dies under load.
    return SAFE.has(method) || (reused && IDEMPOTENT.has(method));
  }

  private fail(error: RouterError, cause?: string): void {
    this.error = cause === undefined ? error : `${error}: ${cause}`;
    if (this.res.headersSent) this.res.destroy();
    else sendPage(this.res, error, this.host, this.fwd.requestId);
  }

  private onClientClose(): void {
    const { res } = this;
    this.ctx.requestDone();
    // The client left first (or we cut it): stop the instance's side too.
    if (!res.writableFinished) this.proxyReq?.destroy();
    this.logAccess(res.headersSent ? res.statusCode : CLIENT_CLOSED_REQUEST, this.error);
  }
}
