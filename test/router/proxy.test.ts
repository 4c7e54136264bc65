/**
 * The proxy against real backends on loopback: routing, round robin, the
 * router's own pages, retries, broken backends and forwarded headers. The
 * table is applied directly here; poll.test.ts feeds it over the long-poll.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { describe, expect, it } from "vitest";
import { ROUTER_ERROR_HEADER } from "../../agent/router/pages";
import {
  DATA_PATH,
  get,
  listen,
  pathRoute,
  port,
  refusedPort,
  route,
  startBackend,
  startRouter,
  until,
  whoAnswers,
  type RunningRouter,
} from "./support";
import { cleanupsAfterEach, startBackendIn } from "./cleanups";

const cleanups = cleanupsAfterEach();

const backend = (...args: Parameters<typeof startBackend>) => startBackendIn(cleanups, ...args);

async function router(options: Parameters<typeof startRouter>[0] = {}): Promise<RunningRouter> {
  const r = await startRouter(options);
  cleanups.push(() => r.router.shutdown());
  return r;
}

function nodeGet(routerPort: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port: routerPort, path, headers, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
  });
}

describe("routing by Host", () => {
  it("sends each host to its own instances, ignoring case and port", async () => {
    const a = await backend("a");
    const b = await backend("b");
    const { port: p } = await router({ table: { version: 1, routes: [route("a.apps.test", a.port), route("B.Apps.Test", b.port)] } });
    expect(await whoAnswers(p, "a.apps.test")).toBe("a");
    expect(await whoAnswers(p, "A.APPS.TEST:8080")).toBe("a");
    expect(await whoAnswers(p, "b.apps.test.")).toBe("b");
    const reply = await get(p, "b.apps.test", "/some/path?x=1");
    expect(JSON.parse(reply.body)).toMatchObject({ backend: "b", url: "/some/path?x=1" });
  });

  it("spreads requests round robin across three instances", async () => {
    const backends = [await backend("one"), await backend("two"), await backend("three")];
    const { port: p } = await router({ table: { version: 1, routes: [route("rr.apps.test", ...backends.map((b) => b.port))] } });
    const answers: string[] = [];
    for (let i = 0; i < 9; i++) answers.push(await whoAnswers(p, "rr.apps.test"));
    expect(answers).toEqual(["one", "two", "three", "one", "two", "three", "one", "two", "three"]);
  });

  it("forwards the request body and the instance's status and headers", async () => {
    const echo = await backend("echo", (_req, res, body) => {
      res.writeHead(201, { "x-app": "yes", "content-type": "text/plain" });
      res.end(`got ${body}`);
    });
    const { port: p } = await router({ table: { version: 1, routes: [route("echo.apps.test", echo.port)] } });
    const reply = await get(p, "echo.apps.test", "/upload", { method: "POST", body: "hello body", headers: { "content-type": "text/plain" } });
    expect(reply.status).toBe(201);
    expect(reply.headers["x-app"]).toBe("yes");
    expect(reply.body).toBe("got hello body");
  });
});

describe("routing by path", () => {
  it("sends a request to the host's route with the longest matching path, the path unchanged; the path-less route takes the rest", async () => {
    const root = await backend("root");
    const api = await backend("api");
    const v2 = await backend("v2");
    const { port: p } = await router({
      table: { version: 1, routes: [route("shop.apps.test", root.port), pathRoute("shop.apps.test", "/api", api.port), pathRoute("shop.apps.test", "/api/v2", v2.port)] },
    });
    const who = async (path: string) => {
      const reply = await get(p, "shop.apps.test", path);
      return JSON.parse(reply.body) as { backend: string; url: string };
    };
    expect(await who("/")).toMatchObject({ backend: "root" });
    expect(await who("/api")).toMatchObject({ backend: "api", url: "/api" });
    expect(await who("/api/orders?x=1")).toMatchObject({ backend: "api", url: "/api/orders?x=1" });
    expect(await who("/API/Orders")).toMatchObject({ backend: "api", url: "/API/Orders" });
    expect(await who("/api/v2/orders")).toMatchObject({ backend: "v2" });
    expect(await who("/apix")).toMatchObject({ backend: "root", url: "/apix" });
  });

  it("a host with path routes only: 404 outside them; a path route with no instance falls back to the path-less route", async () => {
    const api = await backend("api");
    const root = await backend("root");
    const { port: p } = await router({
      table: { version: 1, routes: [pathRoute("only.apps.test", "/api", api.port), route("idle.apps.test", root.port), pathRoute("idle.apps.test", "/api")] },
    });
    expect((await get(p, "only.apps.test", "/api/x")).status).toBe(200);
    const outside = await get(p, "only.apps.test", "/other");
    expect(outside.status).toBe(404);
    expect(outside.headers[ROUTER_ERROR_HEADER.toLowerCase()]).toBe("unknown_route");
    expect(JSON.parse((await get(p, "idle.apps.test", "/api/x")).body)).toMatchObject({ backend: "root" });
  });

  it("a client that writes the target in absolute form (GET http://host/api) reaches the /api route, not the host's other route", async () => {
    const root = await backend("root");
    const api = await backend("api");
    const { port: p } = await router({
      table: { version: 1, routes: [route("shop.apps.test", root.port), pathRoute("shop.apps.test", "/api", api.port)] },
    });
    const rawGet = async (target: string): Promise<string> => {
      const socket = net.connect(p, "127.0.0.1");
      await once(socket, "connect");
      socket.write(`GET ${target} HTTP/1.1\r\nHost: shop.apps.test\r\nConnection: close\r\n\r\n`);
      let reply = "";
      for await (const chunk of socket) reply += String(chunk);
      return reply;
    };
    expect(await rawGet("http://shop.apps.test/api/orders?x=1")).toContain('"backend":"api"');
    expect(await rawGet("http://shop.apps.test/other")).toContain('"backend":"root"');
    for (const target of ["/api/../admin", "/api%2Fx", "//api", "/API/"]) {
      expect(await rawGet(target), target).toContain(target === "/API/" || target === "/api/../admin" ? '"backend":"api"' : '"backend":"root"');
    }
  });
});

describe("the router's own pages", () => {
  it("answers 404 for a host no route has", async () => {
    const { port: p } = await router({ table: { version: 1, routes: [] } });
    const reply = await get(p, "nope.apps.test");
    expect(reply.status).toBe(404);
    expect(reply.headers[ROUTER_ERROR_HEADER.toLowerCase()]).toBe("unknown_route");
    expect(reply.body).toContain("Requested route ('nope.apps.test') does not exist.");
  });

  it("answers 503 for a route with no running instance", async () => {
    const { port: p } = await router({ table: { version: 1, routes: [route("idle.apps.test")] } });
    const reply = await get(p, "idle.apps.test");
    expect(reply.status).toBe(503);
    expect(reply.headers[ROUTER_ERROR_HEADER.toLowerCase()]).toBe("no_endpoints");
  });

  it("answers 503 before the first route table arrives", async () => {
    const { port: p } = await router();
    const reply = await get(p, "any.apps.test");
    expect(reply.status).toBe(503);
    expect(reply.headers[ROUTER_ERROR_HEADER.toLowerCase()]).toBe("table_not_loaded");
  });
});

describe("retries", () => {
  it("retries another instance when the connection is refused", async () => {
    const live = await backend("live");
    const dead = await refusedPort();
    const { port: p, lines } = await router({ table: { version: 1, routes: [route("r.apps.test", dead, live.port)] } });
    for (let i = 0; i < 4; i++) expect(await whoAnswers(p, "r.apps.test")).toBe("live");
    // A POST whose connect was refused is retried too: its body had not been sent.
    const reply = await get(p, "r.apps.test", "/", { method: "POST", body: "payload" });
    expect(reply.status).toBe(200);
    expect(live.requests.at(-1)!.body).toBe("payload");
    await until(() => lines.filter((l) => l.msg === "request").length === 5, 2_000, "five access lines");
    const logged = lines.filter((l) => l.msg === "request");
    expect(logged.every((l) => l.upstream === `127.0.0.1:${live.port}` && l.error === undefined)).toBe(true);
    // Round robin starts on the refused instance every other request: those took two attempts.
    expect(logged.map((l) => l.attempts)).toContain(2);
  });

  it("answers 502 when every instance refuses, after at most maxAttempts", async () => {
    const refused = [await refusedPort(), await refusedPort(), await refusedPort(), await refusedPort()];
    const { port: p, lines } = await router({ maxAttempts: 3, table: { version: 1, routes: [route("x.apps.test", ...refused)] } });
    const reply = await get(p, "x.apps.test");
    expect(reply.status).toBe(502);
    expect(reply.headers[ROUTER_ERROR_HEADER.toLowerCase()]).toBe("endpoint_failure");
    await until(() => lines.some((l) => l.msg === "request"), 2_000, "access line");
    expect(lines.find((l) => l.msg === "request")).toMatchObject({ status: 502, error: "endpoint_failure: ECONNREFUSED", attempts: 3 });
  });

  it("replays a GET whose reused keep-alive connection the instance closed, never a POST", async () => {
    // "flaky" answers its first request with keep-alive, then closes the connection on the next one unanswered.
    let seen = 0;
    const flaky = net.createServer((socket) => {
      socket.on("data", () => {
        seen++;
        if (seen % 2 === 1) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nflaky");
        else socket.destroy();
      });
    });
    await listen(flaky);
    cleanups.push(() => new Promise((r) => flaky.close(r)));
    const steady = await backend("steady");
    const { port: p } = await router({ table: { version: 1, routes: [route("f.apps.test", port(flaky), steady.port)] } });
    expect((await get(p, "f.apps.test")).body).toBe("flaky"); // flaky answers, keeps the connection
    expect(await whoAnswers(p, "f.apps.test")).toBe("steady");
    expect(await whoAnswers(p, "f.apps.test")).toBe("steady"); // flaky's reused connection died: replayed on steady
    expect(seen).toBe(2);
    expect((await get(p, "f.apps.test")).body).toBe("flaky"); // flaky again, on a new connection
    expect(await whoAnswers(p, "f.apps.test")).toBe("steady");
    const post = await get(p, "f.apps.test", "/", { method: "POST", body: "once" }).then((reply) => reply.status, () => "connection closed");
    expect(seen).toBe(4); // reached flaky's reused connection: not replayed
    // The Node proxy answers 502; HAProxy closes the client's keep-alive connection unanswered
    // (its rule for a failed request on a reused connection: the client decides whether to retry).
    expect(post).toBe(DATA_PATH === "node" ? 502 : "connection closed");
  });
});

/**
 * A loopback port whose connects hang: a child process listens with a
 * backlog of 1 and then blocks its event loop, so it never accepts; once its
 * accept queue is full, the kernel drops further SYNs.
 */
async function hangingPort(): Promise<number> {
  const script = `
    const server = require("node:net").createServer();
    server.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => {
      process.stdout.write(server.address().port + "\\n", () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0));
    });`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  cleanups.push(async () => {
    child.kill("SIGKILL");
    await once(child, "exit");
  });
  const [chunk] = (await once(child.stdout!, "data")) as [Buffer];
  const p = Number(chunk.toString().trim());
  // Fill the accept queue; these connections are never served. Two fit; the third must hang.
  const fillers = Array.from({ length: 3 }, () => {
    const filler = net.connect(p, "127.0.0.1");
    filler.on("error", () => filler.destroy());
    cleanups.push(async () => filler.destroy());
    return filler;
  });
  await until(() => fillers.filter((f) => !f.connecting).length >= 2, 2_000, "accept queue filled");
  expect(fillers[2]!.connecting).toBe(true);
  return p;
}

describe("connect timeouts", () => {
  it("counts a connect that hangs past connectMs as a connect failure: retried, else 502", async () => {
    const blackhole = await hangingPort();
    const live = await backend("live");
    const { port: p } = await router({ timeouts: { connectMs: 150 }, table: { version: 1, routes: [route("t.apps.test", blackhole, live.port), route("only.apps.test", blackhole)] } });
    expect(await whoAnswers(p, "t.apps.test")).toBe("live");
    const reply = await get(p, "only.apps.test");
    expect(reply.status).toBe(502);
    expect(reply.headers[ROUTER_ERROR_HEADER.toLowerCase()]).toBe("endpoint_failure");
  });
});

describe("broken backends", () => {
  it("answers 502 when the instance drops the connection before answering", async () => {
    const rude = await backend("rude", (req) => req.socket.destroy());
    const { port: p } = await router({ table: { version: 1, routes: [route("rude.apps.test", rude.port)] } });
    const reply = await get(p, "rude.apps.test", "/", { method: "POST", body: "x" });
    expect(reply.status).toBe(502);
    expect(reply.headers[ROUTER_ERROR_HEADER.toLowerCase()]).toBe("endpoint_failure");
  });

  it("cuts the client's connection when the instance dies mid-response", async () => {
    const half = await backend("half", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": "1000" });
      res.write("only the first part");
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const { port: p, lines } = await router({ table: { version: 1, routes: [route("half.apps.test", half.port)] } });
    // The client saw a 200 and a body that stops short: its connection must end in an error, not a short body.
    await expect(get(p, "half.apps.test")).rejects.toThrow();
    await until(() => lines.some((l) => l.msg === "request"), 2_000, "access line");
    expect(lines.find((l) => l.msg === "request")).toMatchObject({ status: 200, error: "upstream_aborted" });
  });

  it("answers 504 when the instance does not answer in time", async () => {
    const slow = await backend("slow", (_req, res) => setTimeout(() => res.end("late"), 1_000));
    const { port: p } = await router({ timeouts: { upstreamIdleMs: 100 }, table: { version: 1, routes: [route("slow.apps.test", slow.port)] } });
    const reply = await get(p, "slow.apps.test");
    expect(reply.status).toBe(504);
    expect(reply.headers[ROUTER_ERROR_HEADER.toLowerCase()]).toBe("endpoint_timeout");
  });
});

describe("forwarded headers and the access log", () => {
  it("adds X-Forwarded-For/Proto/Host and makes an X-Request-Id", async () => {
    const b = await backend("h");
    const { port: p, lines } = await router({ table: { version: 1, routes: [route("h.apps.test", b.port)] } });
    // node:http, since undici refuses to send hop-by-hop headers itself.
    await nodeGet(p, "/path?secret=1", { host: "h.apps.test:4000", connection: "keep-alive, x-hop", "x-hop": "drop me", "keep-alive": "timeout=5" });
    const seen = b.requests[0]!.headers;
    expect(seen["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen["x-forwarded-proto"]).toBe("http");
    expect(seen["x-forwarded-host"]).toBe("h.apps.test:4000");
    expect(seen.host).toBe("h.apps.test:4000");
    expect(seen["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen["x-hop"]).toBeUndefined();
    expect(seen["keep-alive"]).toBeUndefined();
    await until(() => lines.some((l) => l.msg === "request"), 2_000, "access line");
    const line = lines.find((l) => l.msg === "request")!;
    expect(line).toMatchObject({
      host: "h.apps.test",
      method: "GET",
      path: "/path",
      status: 200,
      upstream: `127.0.0.1:${b.port}`,
      request_id: seen["x-request-id"],
    });
    expect(typeof line.duration_ms).toBe("number");
  });

  it("from a trusted proxy, passes an incoming X-Request-Id, X-Forwarded-Proto and -Host through and appends to X-Forwarded-For", async () => {
    const b = await backend("h");
    const { port: p } = await router({ trustedProxies: ["127.0.0.0/8"], table: { version: 1, routes: [route("h.apps.test", b.port)] } });
    await get(p, "h.apps.test", "/", {
      headers: { "x-request-id": "req-42", "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https", "x-forwarded-host": "public.example" },
    });
    const seen = b.requests[0]!.headers;
    expect(seen["x-request-id"]).toBe("req-42");
    expect(seen["x-forwarded-for"]).toBe("203.0.113.7, 127.0.0.1");
    expect(seen["x-forwarded-proto"]).toBe("https");
    expect(seen["x-forwarded-host"]).toBe("public.example");
  });
});
