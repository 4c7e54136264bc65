/**
 * @module A stand-in for what a hostile tenant aims registry fetches at: a
 * service on the host's loopback (a cloud's metadata endpoint, an admin
 * port) that answers every request with a secret and records what it got.
 * `GET /__requests` answers how many requests it saw before, for tests inside
 * workerd that cannot read this process's memory; it is not counted.
 */
import { createServer } from "node:http";
import { listenOnLoopback, type LoopbackServer } from "./loopback-server";
import { INWARD_SECRET } from "./provided";


export interface InwardService extends LoopbackServer {
  /** Paths requested, in order (without /__requests). */
  requests: string[];
}

export async function startInwardService(): Promise<InwardService> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    if (req.url === "/__requests") return void res.end(JSON.stringify(requests.length));
    requests.push(req.url ?? "/");
    res.writeHead(200, { "content-type": "application/json", "www-authenticate": `Bearer realm="${INWARD_SECRET}"` });
    res.end(JSON.stringify({ token: INWARD_SECRET, secret: INWARD_SECRET }));
  });
  return { ...(await listenOnLoopback(server)), requests };
}
