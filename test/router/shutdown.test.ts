/** Graceful shutdown: stop accepting, finish what is in flight, cut it at the deadline. */
import net from "node:net";
import { describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import http from "node:http";
import { LOOPBACK, closeServer, get, listen, port, route, startRouter, until } from "./support";
import { cleanupsAfterEach, startBackendIn } from "./cleanups";

const cleanups = cleanupsAfterEach();

function connectRefused(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(p, LOOPBACK);
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}

function slowBackend(delayMs: number) {
  return startBackendIn(cleanups, "slow", (_req, res) => setTimeout(() => res.end("finally"), delayMs));
}

describe("graceful shutdown", () => {
  it("finishes a slow request in flight, refuses new connections, then resolves", async () => {
    const slow = await slowBackend(300);
    const r = await startRouter({ timeouts: { shutdownMs: 5_000 }, table: { version: 1, routes: [route("slow.apps.test", slow.port)] } });
    const inFlight = get(r.port, "slow.apps.test");
    await until(() => slow.requests.length === 1, 2_000, "request reached the backend");
    const stopped = r.router.shutdown();
    // At once on the Node path; as soon as HAProxy has taken its soft-stop signal on the other.
    await until(() => connectRefused(r.port), 2_000, "new connections refused");
    const reply = await inFlight;
    expect(reply.status).toBe(200);
    expect(reply.body).toBe("finally");
    await stopped;
    // Resolved because the client's keep-alive connection was closed after its response, not by the deadline.
    expect(r.lines.some((l) => l.msg === "shutdown deadline reached; cutting what is left")).toBe(false);
    expect(await r.router.inFlight()).toBe(0);
  });

  it("cuts a request still running at the deadline", async () => {
    const slow = await slowBackend(5_000);
    const r = await startRouter({ timeouts: { shutdownMs: 200 }, table: { version: 1, routes: [route("slow.apps.test", slow.port)] } });
    const inFlight = get(r.port, "slow.apps.test");
    await until(() => slow.requests.length === 1, 2_000, "request reached the backend");
    const cut = expect(inFlight).rejects.toThrow();
    await r.router.shutdown();
    await cut;
    expect(r.lines.some((l) => l.msg === "shutdown deadline reached; cutting what is left")).toBe(true);
  });

  it("closes an open WebSocket at the deadline", async () => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    wss.on("connection", (socket) => socket.on("message", (d) => socket.send(d)));
    await listen(server);
    cleanups.push(async () => {
      wss.close();
      await closeServer(server);
    });
    const r = await startRouter({ timeouts: { shutdownMs: 200 }, table: { version: 1, routes: [route("ws.apps.test", port(server))] } });
    const ws = new WebSocket(`ws://${LOOPBACK}:${r.port}/`, { headers: { host: "ws.apps.test" } });
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const closed = new Promise((resolve) => ws.once("close", resolve));
    await r.router.shutdown();
    await closed;
    await until(async () => (await r.router.inFlight()) === 0, 1_000, "upgraded connection released");
  });
});
