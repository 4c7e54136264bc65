/**
 * @module WebSocket (and any other HTTP/1.1 Upgrade) through the router: the
 * request goes to the instance on a fresh connection, and only when the
 * instance answers `101 Switching Protocols` are both sockets piped raw. The
 * router does not speak WebSocket: the handshake answer and every frame pass
 * through untouched. Connect failures are retried on another instance like
 * ordinary requests (nothing was sent yet).
 *
 * Until that 101 nothing the client sends is read: an instance that refuses
 * the upgrade (any other status) has its answer relayed and both connections
 * closed, so bytes a client pipelined after its upgrade request (a second
 * request, smuggled past the router's header rewriting and access log) never
 * reach the instance. Node's HTTP client parses the instance's answer, so a
 * malformed one is an upstream error like any other.
 *
 * Tunnels are capped per route (TunnelCounts) and closed after tunnelIdleMs
 * with no byte either way.
 */
import http, { STATUS_CODES, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { CLIENT_CLOSED_REQUEST, errorCode } from "./access-log";
import { Forwarding, UpstreamTimeoutError, type ProxyContext } from "./forwarding";
import { clientResponseHeaders } from "./headers";
import { rawPage, statusOf, type RouterError } from "./pages";
import type { Backend } from "./table";
import { connectWithDeadline, isConnectFailure } from "./upstream-pools";

/**
 * A response head as HTTP/1.1 bytes. The reason phrase is Node's for the
 * status, not the instance's (which may hold control characters); names and
 * values come from Node's parser, which refuses CR and LF in them.
 */
export function serializeResponseHead(status: number, headers: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** `tracked` holds every client socket in the upgraded state, for shutdown. */
export function handleUpgrade(ctx: ProxyContext, req: IncomingMessage, client: Duplex, head: Buffer, tracked: Set<Duplex>): void {
  new Tunnel(ctx, req, client, head, tracked).start();
}

class Tunnel extends Forwarding {
  private proxyReq: http.ClientRequest | null = null;
  private upstreamSocket: Socket | null = null;
  private counted = false;
  private logged = false;

  constructor(
    ctx: ProxyContext,
    req: IncomingMessage,
    private readonly client: Duplex,
    private readonly head: Buffer,
    private readonly tracked: Set<Duplex>,
  ) {
    super(ctx, req, true);
  }

  start(): void {
    const { client } = this;
    // Nothing may be read from the client before the instance has switched protocols.
    client.pause();
    tracked(this.tracked, client);
    client.on("error", (err) => this.log(CLIENT_CLOSED_REQUEST, errorCode(err)));
    client.once("close", () => {
      this.proxyReq?.destroy();
      this.upstreamSocket?.destroy();
      if (this.counted) this.ctx.tunnels.close(this.host);
      this.log(CLIENT_CLOSED_REQUEST, "client_closed");
    });
    const first = this.firstBackend();
    if (typeof first === "string") return this.fail(first);
    if (!this.ctx.tunnels.tryOpen(this.host)) return this.fail("tunnel_limit");
    this.counted = true;
    this.connect(first);
  }

  private connect(backend: Backend): void {
    this.attemptOn(backend);
    const { connectMs } = this.ctx;
    // A connection of its own (no pool): it becomes the tunnel.
    const createConnection = (): Socket => connectWithDeadline({ host: backend.address, port: backend.port, noDelay: true }, connectMs);
    const { proxyReq, headCame } = this.upstreamRequest(backend, { createConnection }, (what) => this.invalidResponse(what));
    this.proxyReq = proxyReq;
    proxyReq.on("upgrade", (res: IncomingMessage, socket: Socket, upstreamHead: Buffer) => {
      headCame();
      this.onSwitched(res, socket, upstreamHead);
    });
    proxyReq.on("response", (res) => {
      headCame();
      this.onRefused(res);
    });
    proxyReq.on("error", (err) => this.onUpstreamError(err));
    proxyReq.end();
  }

  /** A real 101: from here on the bytes are the app's protocol, relayed both ways untouched. */
  private onSwitched(res: IncomingMessage, socket: Socket, upstreamHead: Buffer): void {
    const { client } = this;
    this.upstreamSocket = socket;
    this.log(101, undefined);
    // Node detached its own listeners from the socket: errors are ours to catch now.
    socket.on("error", () => client.destroy());
    socket.once("close", () => client.destroy());
    if (client.destroyed) return void socket.destroy();
    // Reads and writes both count as activity on the instance's side, so one timer sees both directions.
    socket.setTimeout(this.ctx.tunnelIdleMs, () => {
      socket.destroy();
      client.destroy();
    });
    client.write(serializeResponseHead(101, res.rawHeaders));
    if (upstreamHead.length > 0) client.write(upstreamHead);
    if (this.head.length > 0) socket.write(this.head);
    socket.pipe(client);
    client.pipe(socket);
  }

  /** The instance answered the upgrade request with an ordinary response: relay it, then close both sides. */
  private onRefused(res: IncomingMessage): void {
    const { client } = this;
    const status = res.statusCode!;
    if (status < 100) return this.invalidResponse(`status ${status}`);
    this.log(status, undefined);
    // The body is relayed as Node decoded it, delimited by the close (Transfer-Encoding is dropped).
    client.write(serializeResponseHead(status, [...clientResponseHeaders(res.rawHeaders), "Connection", "close"]));
    client.once("finish", () => client.destroy());
    res.pipe(client);
    res.once("close", () => {
      if (!res.complete) client.destroy();
    });
  }

  /** The instance answered what no client may be sent: the router's 502 instead, and its connection closed. */
  private invalidResponse(what: string): void {
    if (this.client.destroyed || this.client.writableEnded) return;
    this.fail("endpoint_failure", `invalid_response: ${what}`);
    this.proxyReq?.destroy();
  }

  private onUpstreamError(err: Error): void {
    if (this.client.destroyed || this.client.writableEnded) return;
    if (this.logged) {
      // The client has the instance's answer already: only cutting it says that answer broke off.
      this.client.destroy();
      return;
    }
    if (isConnectFailure(err)) {
      // Not connected: nothing was sent, another instance may take it.
      const next = this.nextBackend();
      if (next !== undefined) return this.connect(next);
    }
    this.fail(err instanceof UpstreamTimeoutError ? "endpoint_timeout" : "endpoint_failure", errorCode(err));
  }

  private fail(error: RouterError, cause?: string): void {
    this.log(statusOf(error), cause === undefined ? error : `${error}: ${cause}`);
    // Then closed: the socket is half-open (allowHalfOpen) and unread, so ending alone could hold it forever.
    this.client.end(rawPage(error, this.host, this.fwd.requestId), () => this.client.destroy());
  }

  /** One access line per upgrade: when the instance answers the handshake, or when it fails. */
  private log(status: number, error: string | undefined): void {
    if (this.logged) return;
    this.logged = true;
    this.logAccess(status, error);
  }
}

function tracked(set: Set<Duplex>, socket: Duplex): void {
  set.add(socket);
  socket.once("close", () => set.delete(socket));
}
