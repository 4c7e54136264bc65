/** WebSocket upgrades through the router to a real `ws` echo server. */
import { afterEach, describe, expect, it } from "vitest";
import type WebSocket from "ws";
import { openWebSocket, refusedPort, route, startEchoServer, startRouter, until, type EchoServer } from "./support";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function echoServer(): Promise<EchoServer> {
  const echo = await startEchoServer();
  cleanups.push(() => echo.close());
  return echo;
}

function open(routerPort: number, host: string): Promise<WebSocket> {
  return openWebSocket(routerPort, host, (ws) => cleanups.push(async () => ws.terminate()));
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
    expect(await r.router.inFlight()).toBe(1);
    ws.close();
    await until(async () => (await r.router.inFlight()) === 0, 2_000, "upgraded connection released");
    // One access line per upgrade (HAProxy writes it when the tunnel closes, the Node proxy at the 101).
    await until(() => r.lines.some((l) => l.msg === "request"), 2_000, "access line");
    expect(r.lines.filter((l) => l.msg === "request")).toEqual([expect.objectContaining({ host: "ws.apps.test", path: "/chat", status: 101, upstream: `127.0.0.1:${echo.port}` })]);
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
