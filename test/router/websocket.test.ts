/** WebSocket upgrades through the router to a real `ws` echo server. */
import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { LOOPBACK, closeServer, listen, port, refusedPort, route, startRouter, until } from "./support";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface EchoServer {
  readonly port: number;
  readonly upgrades: http.IncomingHttpHeaders[];
}

async function echoServer(): Promise<EchoServer> {
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  const wss = new WebSocketServer({ server });
  const upgrades: http.IncomingHttpHeaders[] = [];
  wss.on("connection", (socket, req) => {
    upgrades.push(req.headers);
    socket.on("message", (data, isBinary) => socket.send(isBinary ? data : `echo: ${data.toString()}`, { binary: isBinary }));
  });
  await listen(server);
  cleanups.push(async () => {
    for (const client of wss.clients) client.terminate();
    wss.close();
    await closeServer(server);
  });
  return { port: port(server), upgrades };
}

function open(routerPort: number, host: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://${LOOPBACK}:${routerPort}/chat`, { headers: { host } });
  cleanups.push(async () => ws.terminate());
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode} ${String(res.headers["x-berth-router-error"])}`)));
  });
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once("message", (data) => resolve(data.toString())));
}

describe("WebSocket through the router", () => {
  it("echoes messages both ways and forwards the X-Forwarded-* headers", async () => {
    const echo = await echoServer();
    const r = await startRouter({ table: { version: 1, routes: [route("ws.apps.test", echo.port)] } });
    cleanups.push(() => r.router.shutdown());
    const ws = await open(r.port, "ws.apps.test");
    for (const text of ["hello", "second", "x".repeat(100_000)]) {
      const reply = nextMessage(ws);
      ws.send(text);
      expect(await reply).toBe(`echo: ${text}`);
    }
    expect(echo.upgrades[0]).toMatchObject({ "x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http", "x-forwarded-host": "ws.apps.test", upgrade: "websocket" });
    await until(() => r.lines.some((l) => l.msg === "request"), 2_000, "access line");
    expect(r.lines.find((l) => l.msg === "request")).toMatchObject({ host: "ws.apps.test", path: "/chat", status: 101, upstream: `127.0.0.1:${echo.port}` });
    expect(r.router.inFlight).toBe(1);
    ws.close();
    await until(() => r.router.inFlight === 0, 2_000, "upgraded connection released");
  });

  it("tries another instance when one refuses the connection", async () => {
    const echo = await echoServer();
    const r = await startRouter({ table: { version: 1, routes: [route("ws.apps.test", await refusedPort(), echo.port)] } });
    cleanups.push(() => r.router.shutdown());
    for (let i = 0; i < 2; i++) {
      const ws = await open(r.port, "ws.apps.test");
      const reply = nextMessage(ws);
      ws.send(`try ${i}`);
      expect(await reply).toBe(`echo: try ${i}`);
      ws.close();
    }
  });

  it("answers an upgrade for an unknown host with the 404 page, and 502 when no instance accepts", async () => {
    const r = await startRouter({ table: { version: 1, routes: [route("down.apps.test", await refusedPort())] } });
    cleanups.push(() => r.router.shutdown());
    await expect(open(r.port, "nope.apps.test")).rejects.toThrow("HTTP 404 unknown_route");
    await expect(open(r.port, "down.apps.test")).rejects.toThrow("HTTP 502 endpoint_failure");
  });
});
