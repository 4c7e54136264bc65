/**
 * @module `GET /health` on a port of its own, for load balancers (Gorouter's
 * status port): 200 while the router can route, 503 while it has no route
 * table yet (it would answer every request with a 503) or is draining (it is
 * about to stop: take it out of rotation). A separate port, so no app's route
 * can shadow it and the load balancer's checks stay out of the access log.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { DaemonLogger } from "./logger";

export interface HealthState {
  /** A route table has been received and is being served from. */
  readonly hasTable: boolean;
  /** Shutting down (or about to). */
  readonly draining: boolean;
}

export interface HealthAnswer {
  readonly status: 200 | 503;
  readonly body: string;
}

export function healthAnswer(state: HealthState): HealthAnswer {
  if (state.draining) return { status: 503, body: "draining\n" };
  if (!state.hasTable) return { status: 503, body: "no route table yet\n" };
  return { status: 200, body: "ok\n" };
}

/** Listens on `host:port` (0 takes a free port); resolves with the bound address. */
export function startHealthServer(host: string, port: number, state: () => HealthState): Promise<AddressInfo> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "").split("?", 1)[0];
    const { status, body } = path === "/health" ? healthAnswer(state()) : { status: 404, body: "not found\n" };
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Starts /health when a port is configured and logs where; a port it cannot have stops the daemon. */
export function serveHealth(host: string, port: number | undefined, logger: DaemonLogger, state: () => HealthState): void {
  if (port === undefined) return;
  startHealthServer(host, port, state).then(
    (address) => {
      logger.log.info({ address: address.address, port: address.port }, "health listening");
      logger.flush();
    },
    (err: unknown) => {
      logger.log.error({ err }, "cannot listen for /health");
      logger.flush();
      process.exit(1);
    },
  );
}
