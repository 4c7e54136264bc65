/**
 * Attacks on the router by the tenants it serves (issue 15, items 1–3). Every
 * app behind a router belongs to someone who may be hostile: its backend may
 * answer anything, its clients may send anything.
 *
 * The hostile backends are raw TCP servers writing bytes no HTTP library
 * would, against the router daemon in one process (--workers 0), so a crash
 * is the daemon's exit. After each attack another route must still be served
 * by the same process.
 */
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type WebSocket from "ws";
import { ROUTER_ERROR_HEADER } from "../../agent/router/pages";
import {
  DATA_PATH,
  LOOPBACK,
  get,
  listen,
  openWebSocket,
  port,
  route,
  spawnRouterDaemon,
  startBackend,
  startEchoServer,
  startFakeControlPlane,
  startRouter,
  until,
  whoAnswers,
  type Backend,
  type EchoServer,
  type FakeControlPlane,
  type Reply,
  type RouterDaemon,
  type RunningRouter,
} from "../router/support";

const TOKEN = "router-attacks-token";
const ERROR_HEADER = ROUTER_ERROR_HEADER.toLowerCase();

/** What a hostile instance does once it has read the router's request. */
type Misbehaviour = (socket: net.Socket) => void;

/** Writes `line` every `ms` until the router hangs up. */
function forever(socket: net.Socket, line: string, ms: number): void {
  const timer = setInterval(() => {
    if (socket.writable) socket.write(line);
  }, ms);
  socket.once("close", () => clearInterval(timer));
}

const ATTACKS = {
  "invalid-reason": (s) => s.end("HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok"),
  "status-below-100": (s) => s.end("HTTP/1.1 099 OK\r\nContent-Length: 2\r\n\r\nok"),
  "invalid-header-name": (s) => s.end("HTTP/1.1 200 OK\r\nX\x7fName: a\r\nContent-Length: 2\r\n\r\nok"),
  "invalid-header-value": (s) => s.end("HTTP/1.1 200 OK\r\nX-Value: a\x01b\r\nContent-Length: 2\r\n\r\nok"),
  "oversized-headers": (s) => s.end(`HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(100_000)}\r\nContent-Length: 2\r\n\r\nok`),
  "endless-headers": (s) => {
    s.write("HTTP/1.1 200 OK\r\n");
    // A header line each 100 ms: never silent long enough for the idle timeout, never done.
    forever(s, "X-Drip: a\r\n", 100);
  },
  "mid-body-close": (s) => {
    s.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly the first part");
    setTimeout(() => s.destroy(), 50);
  },
  "informational-flood": (s) => forever(s, "HTTP/1.1 100 Continue\r\n\r\n", 10),
  "unrequested-101": (s) => s.write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nraw bytes"),
} satisfies Record<string, Misbehaviour>;
type Attack = keyof typeof ATTACKS;

/**
 * What HAProxy relays where the Node proxy answers 502: a reason phrase as the
 * instance sent it (HAProxy's parser refuses CR and LF in it, so it cannot
 * split a response), and 1xx answers, which RFC 9110 § 15.2 has a proxy
 * forward (the Node proxy reads them itself).
 */
const RELAYED_BY_HAPROXY = new Set<Attack>(["invalid-reason", "informational-flood"]);

/** A TCP server that reads the request (its first bytes) and then misbehaves. */
async function rawBackend(misbehave: Misbehaviour): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on("error", () => undefined);
    socket.once("data", () => misbehave(socket));
  });
  await listen(server);
  return server;
}

describe("a hostile backend cannot take the router down", () => {
  let cp: FakeControlPlane;
  let good: Backend;
  let daemon: RouterDaemon;
  const raw: net.Server[] = [];
  let routerPort: number;

  beforeAll(async () => {
    cp = await startFakeControlPlane({ token: TOKEN, holdMs: 300 });
    good = await startBackend("good");
    const routes = [route("good.apps.test", good.port)];
    for (const [name, misbehave] of Object.entries(ATTACKS)) {
      const server = await rawBackend(misbehave);
      raw.push(server);
      routes.push(route(`${name}.apps.test`, port(server)));
    }
    cp.publish(routes);
    daemon = spawnRouterDaemon(
      [
        "--api-url", cp.url, "--listen", LOOPBACK, "--port", "0", "--workers", "0", "--poll-jitter-ms", "0",
        "--upstream-timeout-ms", "5000", "--upstream-headers-timeout-ms", "1000",
      ],
      { BERTH_ROUTER_TOKEN: TOKEN },
    );
    await until(() => daemon.port() !== undefined && daemon.lines.some((l) => l.msg === "route table received"), 60_000, () => `daemon up: ${daemon.stderr()}`);
    routerPort = daemon.port()!;
  }, 120_000);

  afterAll(async () => {
    await daemon.kill();
    for (const server of raw) server.close();
    await good.close();
    await cp.stop();
  });

  /** The attack's request, then proof the same process still serves another route. */
  async function attack(name: Attack): Promise<Reply> {
    const reply = await get(routerPort, `${name}.apps.test`);
    await expectStillServing();
    return reply;
  }

  async function expectStillServing(): Promise<void> {
    expect(await whoAnswers(routerPort, "good.apps.test")).toBe("good");
    expect(daemon.child.exitCode).toBeNull();
    expect(daemon.child.signalCode).toBeNull();
  }

  function accessLine(host: string): Record<string, unknown> | undefined {
    return daemon.lines.find((l) => l.msg === "request" && l.host === host);
  }

  it.each<[string, Attack]>([
    ["a backend with an invalid status line cannot crash the router", "invalid-reason"],
    ["a backend with a status code below 100 cannot crash the router", "status-below-100"],
    ["a backend sending an invalid header name cannot crash the router", "invalid-header-name"],
    ["a backend sending an invalid header value cannot crash the router", "invalid-header-value"],
    ["a backend sending oversized headers cannot crash the router", "oversized-headers"],
    ["a backend flooding 1xx responses cannot hold a request or crash the router", "informational-flood"],
    ["a backend answering 101 to a request that asked for no upgrade cannot hang it or crash the router", "unrequested-101"],
  ])("%s", async (_name, name) => {
    if (DATA_PATH === "haproxy" && RELAYED_BY_HAPROXY.has(name)) {
      // undici refuses a 1xx it did not ask for; HAProxy stays up either way.
      const outcome = await get(routerPort, `${name}.apps.test`).then((r) => r.status, () => "refused by the client");
      await expectStillServing();
      expect(outcome).toBe(name === "invalid-reason" ? 200 : "refused by the client");
      return;
    }
    const reply = await attack(name);
    expect(reply.status).toBe(502);
    expect(reply.headers[ERROR_HEADER]).toBe("endpoint_failure");
    await until(() => accessLine(`${name}.apps.test`) !== undefined, 5_000, "access line");
    expect(accessLine(`${name}.apps.test`)).toMatchObject({ status: 502 });
  }, 20_000);

  it("a backend dripping endless headers cannot hold a request forever", async () => {
    const reply = await attack("endless-headers");
    expect(reply.status).toBe(504);
    expect(reply.headers[ERROR_HEADER]).toBe("endpoint_timeout");
  }, 20_000);

  it("a backend closing mid-body cannot crash the router, and the client's response is cut", async () => {
    await expect(get(routerPort, "mid-body-close.apps.test")).rejects.toThrow();
    await expectStillServing();
    await until(() => accessLine("mid-body-close.apps.test") !== undefined, 5_000, "access line");
    expect(accessLine("mid-body-close.apps.test")).toMatchObject({ status: 200, error: "upstream_aborted" });
  }, 20_000);
});

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function router(options: Parameters<typeof startRouter>[0]): Promise<RunningRouter> {
  const r = await startRouter(options);
  cleanups.push(() => r.router.shutdown());
  return r;
}

async function echoServer(): Promise<EchoServer> {
  const echo = await startEchoServer();
  cleanups.push(() => echo.close());
  return echo;
}

function openSocket(routerPort: number, host: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return openWebSocket(routerPort, host, (ws) => cleanups.push(async () => ws.terminate()), headers);
}

/** Writes `bytes` on a raw connection to the router; resolves with all it answered once it closed. */
function rawExchange(routerPort: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(routerPort, LOOPBACK, () => socket.write(bytes));
    let answer = "";
    socket.on("data", (chunk: Buffer) => (answer += chunk.toString("latin1")));
    socket.once("close", () => resolve(answer));
    socket.once("error", reject);
  });
}

describe("upgrades tunnel only what the instance accepted", () => {
  it("a client cannot smuggle a request past the router through an upgrade the app refuses", async () => {
    // An ordinary keep-alive app with no WebSocket: it answers the upgrade request with a 404, then reads on.
    const app = await startBackend("app", (_req, res) => res.writeHead(404, { "content-length": "9" }).end("not found"));
    cleanups.push(() => app.close());
    const r = await router({ table: { version: 1, routes: [route("app.apps.test", app.port)] } });
    const answer = await rawExchange(
      r.port,
      "GET /chat HTTP/1.1\r\nHost: app.apps.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" +
        "GET /admin HTTP/1.1\r\nHost: app.apps.test\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
    );
    expect(answer).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    await until(async () => (await r.router.inFlight()) === 0, 5_000, "tunnel released");
    // Whatever reached the app came through the router as a request of its own: the router's
    // X-Forwarded-For, one access line each. (The Node proxy closes after the refused upgrade;
    // HAProxy parses the next request like any other.) Never raw bytes behind a refused upgrade.
    expect(app.requests[0]!.url).toBe("/chat");
    for (const seen of app.requests) expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");
    await until(() => r.lines.filter((l) => l.msg === "request").length >= app.requests.length, 5_000, "access lines");
    expect(r.lines.filter((l) => l.msg === "request").map((l) => l.path)).toEqual(app.requests.map((q) => q.url));
  });

  it("a backend that never answers an upgrade cannot hold the client's connection", async () => {
    const silent = await rawBackend(() => undefined);
    cleanups.push(async () => void silent.close());
    const r = await router({ timeouts: { upstreamHeadersMs: 300 }, table: { version: 1, routes: [route("silent.apps.test", port(silent))] } });
    await expect(openSocket(r.port, "silent.apps.test")).rejects.toThrow("HTTP 504 endpoint_timeout");
    await until(async () => (await r.router.inFlight()) === 0, 5_000, "tunnel released");
  }, 20_000);

  it("a client cannot hold a tunnel open forever by going silent", async () => {
    const echo = await echoServer();
    const r = await router({ timeouts: { tunnelIdleMs: 300 }, table: { version: 1, routes: [route("ws.apps.test", echo.port)] } });
    const ws = await openSocket(r.port, "ws.apps.test");
    const echoed = new Promise((resolve) => ws.once("message", resolve));
    ws.send("still here");
    await echoed;
    const closed = new Promise((resolve) => ws.once("close", resolve));
    await closed;
    await until(async () => (await r.router.inFlight()) === 0, 5_000, "idle tunnel released");
  }, 20_000);

  it("one app's clients cannot open more tunnels than its route's cap, and other routes keep theirs", async () => {
    const echo = await echoServer();
    const r = await router({ maxTunnelsPerRoute: 2, table: { version: 1, routes: [route("greedy.apps.test", echo.port), route("other.apps.test", echo.port)] } });
    const first = await openSocket(r.port, "greedy.apps.test");
    await openSocket(r.port, "greedy.apps.test");
    await expect(openSocket(r.port, "greedy.apps.test")).rejects.toThrow("HTTP 503 tunnel_limit");
    await openSocket(r.port, "other.apps.test");
    // A closed tunnel gives its place back.
    first.close();
    await until(async () => (await r.router.inFlight()) === 2, 5_000, "first tunnel released");
    await openSocket(r.port, "greedy.apps.test");
  });
});

describe("forwarded headers are believed only from trusted proxies", () => {
  const forged = { "x-forwarded-for": "10.0.0.1", "x-forwarded-proto": "https", "x-forwarded-host": "admin.internal", forwarded: "for=10.0.0.1;proto=https" };

  /** The forwarding headers an app sees for a request claiming `forged`, through a router trusting `trustedProxies`. */
  async function seenBehind(trustedProxies: string[]): Promise<Record<string, unknown>> {
    const app = await startBackend("app");
    cleanups.push(() => app.close());
    const r = await router({ trustedProxies, table: { version: 1, routes: [route("app.apps.test", app.port)] } });
    await get(r.port, "app.apps.test", "/", { headers: forged });
    const { forwarded, "x-forwarded-for": xff, "x-forwarded-proto": proto, "x-forwarded-host": host } = app.requests[0]!.headers;
    return { forwarded, xff, proto, host };
  }

  it("a client cannot forge X-Forwarded-For, -Proto or -Host", async () => {
    // A trusted range that does not hold the client: its claims are replaced by what the router saw.
    expect(await seenBehind(["10.0.0.0/8"])).toEqual({ forwarded: undefined, xff: "127.0.0.1", proto: "http", host: "app.apps.test" });
  });

  it("a client cannot forge them on a WebSocket upgrade either", async () => {
    const echo = await echoServer();
    const r = await router({ table: { version: 1, routes: [route("ws.apps.test", echo.port)] } });
    await openSocket(r.port, "ws.apps.test", forged);
    expect(echo.upgrades[0]).toMatchObject({ "x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http", "x-forwarded-host": "ws.apps.test" });
    expect(echo.upgrades[0]!.forwarded).toBeUndefined();
  });

  it("a trusted proxy's forwarded headers are kept, its address appended", async () => {
    expect(await seenBehind(["127.0.0.1"])).toEqual({ forwarded: "for=10.0.0.1;proto=https", xff: "10.0.0.1, 127.0.0.1", proto: "https", host: "admin.internal" });
  });
});
