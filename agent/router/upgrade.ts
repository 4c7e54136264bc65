/**
 * @module WebSocket (and any other HTTP/1.1 Upgrade) through the router: the
 * request is re-sent on a fresh TCP connection to the instance, then both
 * sockets are piped raw. The router does not speak WebSocket: the handshake
 * answer and every frame pass through untouched. Connect failures are retried
 * on another instance like ordinary requests (nothing was sent yet).
 */
import type { IncomingMessage } from "node:http";
import type net from "node:net";
import type { Duplex } from "node:stream";
import { CLIENT_CLOSED_REQUEST, errorCode } from "./access-log";
import { Forwarding, type ProxyContext } from "./forwarding";
import { rawPage, statusOf, type RouterError } from "./pages";
import type { Backend } from "./table";
import { connectWithDeadline } from "./upstream-pools";

/** The request line and headers as HTTP/1.1 bytes (Node's parser already rejected CR/LF in them). */
export function serializeRequestHead(method: string, url: string, headers: readonly string[]): string {
  let head = `${method} ${url} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}\r\n`;
}

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;

/** `tracked` holds every client socket in the upgraded state, for shutdown. */
export function handleUpgrade(ctx: ProxyContext, req: IncomingMessage, client: Duplex, head: Buffer, tracked: Set<Duplex>): void {
  new Tunnel(ctx, req, client, head, tracked).start();
}

class Tunnel extends Forwarding {
  private upstreamSocket: net.Socket | null = null;
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
    // Nothing may be read from the client before the instance is there to receive it.
    client.pause();
    tracked(this.tracked, client);
    client.on("error", (err) => this.log(CLIENT_CLOSED_REQUEST, errorCode(err)));
    client.once("close", () => {
      this.upstreamSocket?.destroy();
      this.log(CLIENT_CLOSED_REQUEST, "client_closed");
    });
    const first = this.firstBackend();
    if (typeof first === "string") return this.fail(first);
    this.connect(first);
  }

  private connect(backend: Backend): void {
    this.attemptOn(backend);
    const { ctx, client } = this;
    const socket = connectWithDeadline({ host: backend.address, port: backend.port, noDelay: true }, ctx.connectMs);
    this.upstreamSocket = socket;
    let connected = false;
    socket.once("connect", () => {
      connected = true;
      socket.write(serializeRequestHead(this.req.method ?? "GET", this.req.url ?? "/", this.fwd.headers));
      if (this.head.length > 0) socket.write(this.head);
      socket.once("data", (chunk: Buffer) => {
        const status = STATUS_LINE.exec(chunk.toString("latin1", 0, 12));
        this.log(status === null ? 0 : Number(status[1]), undefined);
      });
      socket.once("close", () => client.destroy());
      socket.pipe(client);
      client.pipe(socket);
    });
    socket.on("error", (err) => {
      if (client.destroyed) return;
      if (connected) {
        this.log(statusOf("endpoint_failure"), errorCode(err));
        client.destroy();
        return;
      }
      // Not connected: nothing was sent, another instance may take it.
      const next = this.nextBackend();
      if (next !== undefined) return this.connect(next);
      this.fail("endpoint_failure", errorCode(err));
    });
  }

  private fail(error: RouterError, cause?: string): void {
    this.log(statusOf(error), cause === undefined ? error : `${error}: ${cause}`);
    this.client.end(rawPage(error, this.host, this.fwd.requestId));
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
