/**
 * @module `GET /metrics` (Prometheus text format) on a port of its own, for
 * the cell agent and the router: opt-in, so nothing binds a port unless an
 * operator asks, and apart from app traffic so no route can shadow it.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface MetricsServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** Listens on `host:port` (0 takes a free port); `render` gives the body and its content type. */
export function startMetricsServer(host: string, port: number, render: () => Promise<{ contentType: string; body: string }>): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "").split("?", 1)[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
      return;
    }
    render().then(
      ({ contentType, body }) => res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" }).end(body),
      (err: unknown) => res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(`metrics unavailable: ${err instanceof Error ? err.message : String(err)}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve({ address: server.address() as AddressInfo, close: () => new Promise<void>((done) => server.close(() => done())) });
    });
  });
}
