/**
 * @module A small HTTP proxy in front of a test registry that can misbehave on
 * purpose, for the failures a real registry will not produce on demand:
 * answering 429 with Retry-After, serving a tampered blob or manifest,
 * redirecting blob GETs to another origin (as registries do to S3/CDN URLs),
 * and recording what each request carried. Everything it does not intercept
 * is forwarded unchanged.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { listenOnLoopback } from "./loopback-server";

export interface ProxiedRequest {
  method: string;
  path: string;
  authorization?: string;
}

export type ProxyAction =
  /** Answer directly. */
  | { respond: { status: number; headers?: Record<string, string>; body?: string } }
  /** Forward, then replace the body (headers kept, Content-Length fixed). */
  | { tamper: (body: Buffer) => Buffer }
  /** Answer 307 to this absolute URL. */
  | { redirect: string };

export type ProxyRule = (req: ProxiedRequest) => ProxyAction | undefined;

export interface RegistryProxy {
  host: string;
  url: string;
  requests: ProxiedRequest[];
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"]);

/** Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) applying `rule` to each request. */
export async function startRegistryProxy(upstream: string, rule: ProxyRule = () => undefined): Promise<RegistryProxy> {
  const requests: ProxiedRequest[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const seen: ProxiedRequest = { method: req.method ?? "GET", path: req.url ?? "/", ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) };
    requests.push(seen);
    const action = rule(seen);
    if (action && "respond" in action) {
      res.writeHead(action.respond.status, action.respond.headers);
      return void res.end(action.respond.body ?? "");
    }
    if (action && "redirect" in action) {
      res.writeHead(307, { location: action.redirect });
      return void res.end();
    }
    const headers: Record<string, string> = {};
    for (const name of ["accept", "authorization", "range"]) {
      const v = req.headers[name];
      if (typeof v === "string") headers[name] = v;
    }
    fetch(`${upstream}${seen.path}`, { method: seen.method, headers, redirect: "manual" })
      .then(async (up) => {
        let body: Buffer = Buffer.from(await up.arrayBuffer());
        if (action && "tamper" in action && up.status === 200) body = action.tamper(body);
        const out: Record<string, string> = {};
        up.headers.forEach((v, k) => {
          if (!HOP_BY_HOP.has(k)) out[k] = v;
        });
        out["content-length"] = String(body.length);
        res.writeHead(up.status, out);
        res.end(seen.method === "HEAD" ? undefined : body);
      })
      .catch((err: unknown) => {
        res.writeHead(502);
        res.end(String(err));
      });
  });
  return { ...(await listenOnLoopback(server)), requests };
}

/** Flips the first byte of a body that is JSON (`{` → `[`), keeping its length: the digest no longer matches. */
export const corruptJson = (body: Buffer): Buffer => {
  const copy = Buffer.from(body);
  copy[0] = copy[0] === 0x7b ? 0x5b : 0x7b;
  return copy;
};
