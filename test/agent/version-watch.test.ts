/**
 * VersionWatch and watched(): while the WebSocket is up a poll waits on it and
 * fetches without `after` (no held request); while it is down the poll is the
 * long-poll it always was. A real `ws` server on loopback stands in for the
 * control plane's channel (the Worker's side is tested in workerd).
 */
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import type { AddressInfo } from "node:net";
import { VersionWatch, watched } from "../../agent/watch/version-watch";

const servers: WebSocketServer[] = [];
const watches: VersionWatch[] = [];

afterEach(async () => {
  watches.splice(0).forEach((w) => w.stop());
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A channel on a free port: each connection is sent `{version}`; `pings` counts keepalives, answered with "pong". */
async function channel(version: number) {
  const server = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  servers.push(server);
  await new Promise((r) => server.once("listening", r));
  const state = { version, sockets: [] as WebSocket[], auth: [] as (string | undefined)[], pings: 0 };
  server.on("connection", (ws, req) => {
    state.auth.push(req.headers.authorization);
    state.sockets.push(ws);
    ws.on("message", (m) => {
      if (String(m) === "ping") {
        state.pings++;
        ws.send("pong");
      }
    });
    ws.send(JSON.stringify({ version: state.version }));
  });
  const announce = (v: number) => {
    state.version = v;
    for (const ws of state.sockets) ws.send(JSON.stringify({ version: v }));
  };
  return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/watch`), state, announce };
}

const watchOn = (url: URL, extra: Partial<ConstructorParameters<typeof VersionWatch>[0]> = {}) => {
  const w = new VersionWatch({ url, credential: "cred", retryMs: 50, ...extra }).start();
  watches.push(w);
  return w;
};

const connected = async (w: VersionWatch) => {
  while (w.current === null) await new Promise((r) => setTimeout(r, 10));
};

describe("watched polls", () => {
  it("wait on the socket, then fetch without after once the version moves", async () => {
    const ch = await channel(7);
    const watch = watchOn(ch.url);
    await connected(watch);
    expect(ch.state.auth).toEqual(["Bearer cred"]);
    const calls: (number | undefined)[] = [];
    const poll = watched(watch, async (after) => {
      calls.push(after);
      return { version: ch.state.version };
    }, 60_000);
    const pending = poll(7);
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toEqual([]); // nothing held: no request while the version stands
    ch.announce(8);
    expect(await pending).toEqual({ version: 8 });
    expect(calls).toEqual([undefined]);
  });

  it("answer unchanged (null) when the wait ends with the same version, without a request", async () => {
    const ch = await channel(3);
    const watch = watchOn(ch.url);
    await connected(watch);
    let requests = 0;
    const poll = watched(watch, async () => {
      requests++;
      return { version: 3 };
    }, 100);
    expect(await poll(3)).toBeNull();
    expect(requests).toBe(0);
  });

  it("long-poll while the socket is down, and wait on it again once it is back", async () => {
    const watch = watchOn(new URL("http://127.0.0.1:9/watch"));
    const calls: (number | undefined)[] = [];
    const poll = watched(watch, async (after) => {
      calls.push(after);
      return null;
    }, 60_000);
    expect(await poll(5)).toBeNull();
    expect(calls).toEqual([5]);
  });

  it("let go of a waiting poll when the socket drops, so the caller polls instead", async () => {
    const ch = await channel(1);
    const watch = watchOn(ch.url, { retryMs: 60_000 });
    await connected(watch);
    const poll = watched(watch, async () => ({ version: 2 }), 60_000);
    const pending = poll(1);
    ch.state.sockets[0]!.terminate();
    // The drop ends the wait; the version is unknown then, so the thing is fetched.
    expect(await pending).toEqual({ version: 2 });
    expect(watch.current).toBeNull();
  });

  it("sends no ping before the handshake completes (a slow control plane must not crash the agent)", async () => {
    // A listener that accepts TCP and never answers the upgrade.
    const { createServer } = await import("node:net");
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const watch = watchOn(new URL(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/watch`), { pingMs: 20 });
      await new Promise((r) => setTimeout(r, 150));
      expect(watch.current).toBeNull();
    } finally {
      silent.close();
    }
  });

  it("keeps the socket alive with pings the channel answers", async () => {
    const ch = await channel(1);
    const watch = watchOn(ch.url, { pingMs: 30 });
    await connected(watch);
    await new Promise((r) => setTimeout(r, 200));
    expect(ch.state.pings).toBeGreaterThan(2);
    expect(watch.current).toBe(1);
    expect(ch.state.sockets).toHaveLength(1);
  });
});
