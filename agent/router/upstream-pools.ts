/**
 * @module One keep-alive connection pool (an `http.Agent`) per instance
 * address. Keep-alive is what makes a Node proxy fast (LIBRARIES.md #7: 1.7k
 * req/s without, 5.4k with); one Agent per backend lets the pool of an
 * instance that left the table be retired on its own.
 */
import http from "node:http";
import type { Backend } from "./table";

export interface PoolOptions {
  /**
   * How long an idle upstream connection is kept. Below the usual server
   * keep-alive (Node's 5 s) so the router rarely reuses a connection the
   * instance is closing; Node also honours a shorter `Keep-Alive: timeout=`.
   */
  readonly idleMs: number;
}

export class UpstreamPools {
  readonly #agents = new Map<string, http.Agent>();

  constructor(private readonly options: PoolOptions) {}

  agentFor(backend: Backend): http.Agent {
    let agent = this.#agents.get(backend.key);
    if (agent === undefined) {
      agent = new http.Agent({ keepAlive: true, timeout: this.options.idleMs, scheduling: "lifo" });
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
