/**
 * @module One keep-alive connection pool (an `http.Agent`) per instance
 * address. Keep-alive is what makes a Node proxy fast (LIBRARIES.md #7: 1.7k
 * req/s without, 5.4k with); one Agent per backend lets the pool of an
 * instance that left the table be retired on its own.
 */
import http from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import type { Backend } from "./table";

/** Connecting to an instance took longer than `connectMs`. */
export class ConnectTimeoutError extends Error {
  readonly code = "ETIMEDOUT";
  constructor(ms: number) {
    super(`connect timed out after ${ms} ms`);
    this.name = "ConnectTimeoutError";
  }
}

/**
 * Whether an upstream error happened before the connection was open, so
 * nothing of the request reached the instance: refused, unreachable, reset
 * during the handshake (Node tags those `syscall: "connect"`), or too slow.
 */
export function isConnectFailure(err: Error): boolean {
  return err instanceof ConnectTimeoutError || (err as NodeJS.ErrnoException).syscall === "connect";
}

/** net.createConnection, destroyed with a {@link ConnectTimeoutError} if not open within `connectMs`. */
export function connectWithDeadline(options: net.NetConnectOpts, connectMs: number): net.Socket {
  const socket = net.createConnection(options);
  const timer = setTimeout(() => socket.destroy(new ConnectTimeoutError(connectMs)), connectMs);
  socket.once("connect", () => clearTimeout(timer));
  socket.once("close", () => clearTimeout(timer));
  return socket;
}

/**
 * An Agent whose new connections carry their own connect deadline: one timer
 * per connection, not per request, since most requests reuse a connection.
 */
class ConnectDeadlineAgent extends http.Agent {
  constructor(
    // The agent hands its options to net.createConnection, which takes noDelay (@types/node 24 no longer lists it on AgentOptions).
    options: http.AgentOptions & Pick<net.SocketConstructorOpts, "noDelay">,
    private readonly connectMs: number,
  ) {
    super(options);
  }

  // Returning the socket (no callback) is how http.Agent takes a synchronous connection.
  override createConnection(options: net.NetConnectOpts): Duplex {
    return connectWithDeadline(options, this.connectMs);
  }
}

export interface PoolOptions {
  /**
   * How long an idle upstream connection is kept. Below the usual server
   * keep-alive (Node's 5 s) so the router rarely reuses a connection the
   * instance is closing; Node also honours a shorter `Keep-Alive: timeout=`.
   */
  readonly idleMs: number;
  readonly connectMs: number;
}

export class UpstreamPools {
  readonly #agents = new Map<string, http.Agent>();

  constructor(private readonly options: PoolOptions) {}

  agentFor(backend: Backend): http.Agent {
    let agent = this.#agents.get(backend.key);
    if (agent === undefined) {
      // noDelay: a proxy relays small writes at once; Nagle plus delayed ACKs cost ~40 ms a request here.
      agent = new ConnectDeadlineAgent({ keepAlive: true, noDelay: true, timeout: this.options.idleMs, scheduling: "lifo" }, this.options.connectMs);
      this.#agents.set(backend.key, agent);
    }
    return agent;
  }

  /**
   * Closes the idle connections of every pool whose backend is not in `keep`
   * and forgets the pool. Requests in flight on it finish; their connections
   * then idle out after `idleMs`, since no new request will pick them.
   */
  retain(keep: ReadonlySet<string>): void {
    for (const [key, agent] of this.#agents) {
      if (keep.has(key)) continue;
      for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
      this.#agents.delete(key);
    }
  }

  get size(): number {
    return this.#agents.size;
  }

  destroy(): void {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }
}
