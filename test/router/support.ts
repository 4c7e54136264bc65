/**
 * @module Real servers for the router tests, all on 127.0.0.1 port 0:
 * backends that say who answered, a fake control plane that speaks the route
 * table long-poll and takes access lines, and a logger whose lines the test can read.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import pino, { type Logger } from "pino";
import { request } from "undici";
import WebSocket, { WebSocketServer } from "ws";
import type { RouteEntry, RouteTable } from "../../shared/protocol/route-table";
import { routerLogBatchSchema, type RouterLogLine } from "../../shared/protocol/router-logs";
import type { RouterTimeouts } from "../../agent/router/config";
import { defaultDataPath } from "../../agent/router/data-path";
import { createHaproxyRouter, type HaproxyRouterOptions } from "../../agent/router/haproxy/haproxy-router";
import { createRouter, type Router, type RouterOptions } from "../../agent/router/router";

/** The data path these tests run against: HAProxy where installed, else the Node proxy (BERTH_ROUTER_DATA_PATH overrides). */
export const DATA_PATH = defaultDataPath();

export const LOOPBACK = "127.0.0.1";

export interface Backend {
  readonly name: string;
  readonly port: number;
  /** Requests seen, in order. */
  readonly requests: { url: string; headers: http.IncomingHttpHeaders; body: string }[];
  readonly server: http.Server;
  close(): Promise<void>;
}

export type BackendHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/** Answers `{"backend": name, "url": ...}` unless given its own handler. */
export async function startBackend(name: string, handler?: BackendHandler): Promise<Backend> {
  const requests: Backend["requests"] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      requests.push({ url: req.url ?? "", headers: req.headers, body });
      if (handler !== undefined) return handler(req, res, body);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ backend: name, url: req.url, body }));
    });
  });
  await listen(server);
  return {
    name,
    port: port(server),
    requests,
    server,
    close: () => closeServer(server),
  };
}

export function listen(server: http.Server | import("node:net").Server, at = 0): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(at, LOOPBACK, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

export function port(server: { address(): AddressInfo | string | null }): number {
  return (server.address() as AddressInfo).port;
}

export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** A port nothing listens on: bound, read and released. */
export async function refusedPort(): Promise<number> {
  const server = http.createServer();
  await listen(server);
  const p = port(server);
  await closeServer(server);
  return p;
}

export function route(host: string, ...ports: number[]): RouteEntry {
  return {
    host,
    instances: ports.map((p, index) => ({ instance_guid: `guid-${host}-${index}-${p}`, app_guid: `app-${host}`, address: LOOPBACK, port: p, index })),
  };
}

/** A route with a path (`/api`) on `host`. */
export function pathRoute(host: string, path: string, ...ports: number[]): RouteEntry {
  return { ...route(host, ...ports), path };
}

export interface CapturedLog {
  readonly log: Logger;
  readonly lines: Record<string, unknown>[];
}

/** A pino logger writing parsed lines into an array. */
export function captureLog(): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n")) if (line.length > 0) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: "debug" }, stream), lines };
}

/** Test timeouts: short enough that failure paths take milliseconds. */
export const FAST_TIMEOUTS: RouterTimeouts = {
  connectMs: 500,
  upstreamIdleMs: 2_000,
  upstreamHeadersMs: 2_000,
  tunnelIdleMs: 5_000,
  drainWaitMs: 0,
  upstreamKeepAliveMs: 2_000,
  clientKeepAliveMs: 2_000,
  clientHeadersMs: 5_000,
  clientRequestMs: 0,
  shutdownMs: 2_000,
  pollRequestMs: 2_000,
};

export interface RunningRouter {
  readonly router: Router;
  readonly port: number;
  readonly lines: Record<string, unknown>[];
}

export interface RouterTestOptions {
  readonly timeouts?: Partial<RouterTimeouts>;
  readonly maxAttempts?: number;
  readonly maxTunnelsPerRoute?: number;
  readonly trustedProxies?: readonly string[];
  readonly table?: RouteTable;
  readonly accessRecorded?: RouterOptions["accessRecorded"];
  readonly metrics?: RouterOptions["metrics"];
  /** HAProxy's own knobs (the access-line pipe), on that data path. */
  readonly haproxy?: Pick<HaproxyRouterOptions, "accessPipeBytes" | "accessReadEveryMs" | "droppedEveryMs">;
}

export async function startRouter(options: RouterTestOptions = {}): Promise<RunningRouter> {
  const { log, lines } = captureLog();
  const routerOptions: RouterOptions = {
    listenHost: LOOPBACK,
    listenPort: 0,
    maxAttempts: options.maxAttempts ?? 3,
    maxTunnelsPerRoute: options.maxTunnelsPerRoute ?? 100,
    trustedProxies: options.trustedProxies ?? [],
    timeouts: { ...FAST_TIMEOUTS, ...options.timeouts },
    log,
    accessRecorded: options.accessRecorded,
    metrics: options.metrics,
  };
  const router = DATA_PATH === "haproxy" ? createHaproxyRouter({ ...routerOptions, ...options.haproxy, threads: 1 }) : createRouter(routerOptions);
  if (options.table !== undefined) void router.applyTable(options.table);
  const address = await router.listen();
  return { router, port: address.port, lines };
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request through the router with the given Host. */
export async function get(routerPort: number, host: string, path = "/", init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  const res = await request(`http://${LOOPBACK}:${routerPort}${path}`, {
    method: (init.method ?? "GET") as "GET",
    headers: { host, ...init.headers },
    body: init.body,
  });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

export interface EchoServer {
  readonly port: number;
  /** Headers of each upgrade request accepted. */
  readonly upgrades: http.IncomingHttpHeaders[];
  close(): Promise<void>;
}

/** A `ws` server echoing each message (text as `echo: TEXT`); plain requests get a 426. */
export async function startEchoServer(): Promise<EchoServer> {
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  const wss = new WebSocketServer({ server });
  const upgrades: http.IncomingHttpHeaders[] = [];
  wss.on("connection", (socket, req) => {
    upgrades.push(req.headers);
    socket.on("message", (data, isBinary) => socket.send(isBinary ? data : `echo: ${data.toString()}`, { binary: isBinary }));
  });
  await listen(server);
  return {
    port: port(server),
    upgrades,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await closeServer(server);
    },
  };
}

/**
 * A WebSocket to `ws://router/chat` with this Host; `track` gets it at once (to
 * terminate it later). Rejects with `HTTP <status> <X-Berth-Router-Error>` when refused.
 */
export function openWebSocket(routerPort: number, host: string, track: (ws: WebSocket) => void, headers: Record<string, string> = {}): Promise<WebSocket> {
  const ws = new WebSocket(`ws://${LOOPBACK}:${routerPort}/chat`, { headers: { host, ...headers } });
  track(ws);
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode} ${String(res.headers["x-berth-router-error"])}`)));
  });
}

/** GET /health on a router's health port. */
export async function getHealth(healthPort: number): Promise<{ status: number; body: string }> {
  const res = await request(`http://${LOOPBACK}:${healthPort}/health`);
  return { status: res.statusCode, body: await res.body.text() };
}

/** Which backend answered (the default handler's JSON). */
export async function whoAnswers(routerPort: number, host: string): Promise<string> {
  const reply = await get(routerPort, host);
  if (reply.status !== 200) throw new Error(`expected 200 from ${host}, got ${reply.status}: ${reply.body}`);
  return (JSON.parse(reply.body) as { backend: string }).backend;
}

/**
 * Stand-in for the Worker's `GET /v3/routes/table` (the real endpoint is the
 * control plane's, tested in test/worker): the same protocol on a plain Node
 * server — bearer token or 401, 200 with the table when `after` differs from
 * its version, else the request is held until a change or `holdMs`, then 204.
 */
export interface FakeControlPlane {
  readonly url: string;
  readonly port: number;
  /** Requests received (any answer). */
  polls: number;
  /** Access lines routers sent to POST /v3/routers/logs, in order. */
  readonly appLogs: RouterLogLine[];
  /** Publishes a new table version and answers every held poll. */
  publish(routes: RouteEntry[]): RouteTable;
  /** Answers every later poll with this raw status and body instead (null: back to the protocol). */
  misbehave(answer: { status: number; body: string } | null): void;
  /** Goes away: listener closed, held and idle connections cut. */
  stop(): Promise<void>;
  /** Comes back on the same port. */
  restart(): Promise<void>;
}

export async function startFakeControlPlane(options: { token: string; holdMs: number }): Promise<FakeControlPlane> {
  let table: RouteTable = { version: 0, routes: [] };
  let override: { status: number; body: string } | null = null;
  const waiting = new Set<() => void>();

  const server = http.createServer((req, res) => {
    cp.polls++;
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== "/v3/routes/table" && url.pathname !== "/v3/routers/logs") return void res.writeHead(404).end();
    if (req.headers.authorization !== `bearer ${options.token}`) {
      res.writeHead(401, { "content-type": "application/json" });
      return void res.end(JSON.stringify({ errors: [{ code: 1000, title: "CF-InvalidAuthToken", detail: "Invalid Auth Token" }] }));
    }
    if (url.pathname === "/v3/routers/logs") {
      // The control plane's checks (routed apps only) are the Worker's, tested there; this keeps every line.
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        const batch = routerLogBatchSchema.parse(JSON.parse(body));
        cp.appLogs.push(...batch.lines);
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ accepted: batch.lines.length, refused: 0 }));
      });
      return;
    }
    const after = url.searchParams.get("after");
    // A held poll woken by publish() misbehaves too when told to.
    const answer = (): void => {
      if (override !== null) return void res.writeHead(override.status, { "content-type": "application/json" }).end(override.body);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(table));
    };
    if (override !== null) return answer();
    if (after === null || Number(after) !== table.version) return answer();
    const timer = setTimeout(() => {
      waiting.delete(wake);
      res.writeHead(204).end();
    }, options.holdMs);
    const wake = (): void => {
      clearTimeout(timer);
      answer();
    };
    waiting.add(wake);
    res.once("close", () => {
      clearTimeout(timer);
      waiting.delete(wake);
    });
  });
  await listen(server);
  const at = port(server);

  const cp: FakeControlPlane = {
    url: `http://${LOOPBACK}:${at}`,
    port: at,
    polls: 0,
    appLogs: [],
    publish(routes) {
      table = { version: table.version + 1, routes };
      for (const wake of [...waiting]) {
        waiting.delete(wake);
        wake();
      }
      return table;
    },
    misbehave(answer) {
      override = answer;
    },
    stop: () => closeServer(server),
    restart: () => listen(server, at),
  };
  return cp;
}

/** Resolves when `check()` holds, polling every 10 ms; rejects after `withinMs`. */
export async function until(check: () => boolean | Promise<boolean>, withinMs: number, what: string | (() => string)): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${withinMs} ms: ${typeof what === "string" ? what : what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface RouterDaemon {
  readonly child: ChildProcess;
  /** Its stdout, one parsed JSON line each. */
  readonly lines: Record<string, unknown>[];
  readonly stderr: () => string;
  /** The port a "listening" (or "health listening", "metrics listening") line reported, once there is one. */
  port(msg?: "listening" | "health listening" | "metrics listening"): number | undefined;
  /** SIGKILL if still running, and wait for the exit. */
  kill(): Promise<void>;
}

const ROUTER_MAIN = path.resolve(import.meta.dirname, "../../agent/router/main.ts");

/** agent/router/main.ts as a child process, with `args` and `env` over this process's environment. */
export function spawnRouterDaemon(args: string[], env: Record<string, string>): RouterDaemon {
  const child = spawn(process.execPath, ["--import", "tsx", ROUTER_MAIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  return {
    child,
    lines,
    stderr: () => stderr,
    port: (msg = "listening") => lines.find((l) => l.msg === msg)?.port as number | undefined,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await once(child, "exit");
    },
  };
}
