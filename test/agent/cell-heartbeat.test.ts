/**
 * The cell agent's heartbeat loop against a real HTTP server standing in for
 * a control plane that holds one heartbeat without answering (an overloaded
 * request, or a connection a middlebox dropped silently): the agent gives
 * that beat up after two intervals and sends it again, instead of going
 * quiet until fetch's own 300 s header timeout while the cell's presence
 * (15 s) expires. And what the beats carry: the instance list only when it
 * is due (heartbeat-list.ts), and always once a control plane refused a beat
 * without one.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { CellAgent } from "../../agent/cell/agent";
import { ControlPlaneClient } from "../../agent/cell/control-plane";
import { defaultRunnerConfig } from "../../agent/supervisor/runner";
import type { ContainerDriver } from "../../agent/supervisor/driver";

/** An agent of the control plane on `port` with no instance desired, so no container is ever started: the driver is never called. */
function idleAgent(port: number, dir: string, heartbeatIntervalMs: number, bulkSyncIntervalMs: number): CellAgent {
  return new CellAgent(
    {
      stateDir: dir, capacity: { memory_mb: 1024, disk_mb: 1024, containers: 4 }, heartbeatIntervalMs, bulkSyncIntervalMs,
      pollJitterMs: 0, backoff: { baseMs: 50, maxMs: 200 }, runner: defaultRunnerConfig,
    },
    {
      client: new ControlPlaneClient(`http://127.0.0.1:${port}`, "cell-guid", "credential"),
      driver: {} as ContainerDriver,
      log: pino({ level: "silent" }),
      cachedLayers: async () => [],
      stage: async () => {
        throw new Error("no staging in this test");
      },
    },
  );
}

describe("CellAgent heartbeats", () => {
  const held: ServerResponse[] = [];
  let beats = 0;
  let onBeat: () => void = () => undefined;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (req.url?.includes("/heartbeat")) {
      beats += 1;
      onBeat();
      if (beats === 1) held.push(res); // the first beat is never answered
      else res.writeHead(204).end();
    } else {
      setTimeout(() => res.writeHead(204).end(), 50); // desired set: unchanged
    }
  });
  let dir: string | undefined;
  let agent: CellAgent | undefined;

  afterAll(async () => {
    await agent?.shutdown();
    for (const res of held) res.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("sends the beat again once an unanswered one has waited two intervals", async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    dir = await mkdtemp(join(tmpdir(), "berth-heartbeat-"));
    const secondBeat = new Promise<void>((resolve) => (onBeat = () => beats >= 2 && resolve()));
    agent = idleAgent(port, dir, 200, 30_000);
    await agent.start();
    await secondBeat;
    expect(beats).toBeGreaterThanOrEqual(2);
    expect(held).toHaveLength(1);
  }, 5_000);
});

describe("CellAgent heartbeat lists", () => {
  /**
   * A control plane that records each beat's body; `refuseUnlisted` answers 422 to beats without a list, as one that
   * predates them; beat number `askAt` (0-based) is answered with a request for the list.
   */
  async function recording(refuseUnlisted: boolean, askAt = -1, bulkSyncMs = 400) {
    const bodies: { instances?: unknown[] }[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let text = "";
      req.on("data", (chunk: Buffer) => (text += chunk.toString()));
      req.on("end", () => {
        if (!req.url?.includes("/heartbeat")) return void setTimeout(() => res.writeHead(204).end(), 50);
        const body = JSON.parse(text) as { instances?: unknown[] };
        bodies.push(body);
        if (refuseUnlisted && !body.instances) {
          res.writeHead(422, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: 10008, title: "CF-UnprocessableEntity", detail: "instances: Invalid input: expected array, received undefined" }] }));
        } else {
          const ask = bodies.length - 1 === askAt ? { list_instances: true } : {};
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ protocol: 1, skipped: [], ...ask }));
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    const dir = await mkdtemp(join(tmpdir(), "berth-heartbeat-"));
    const agent = idleAgent(port, dir, 40, bulkSyncMs);
    const until = async (n: number) => {
      while (bodies.length < n) await new Promise((r) => setTimeout(r, 10));
    };
    const stop = async () => {
      await agent.shutdown();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    };
    await agent.start();
    return { bodies, until, stop };
  }

  it("list the instances on the first beat and then only once the bulk-sync interval has passed", async () => {
    const cp = await recording(false);
    try {
      await cp.until(15);
      const listed = cp.bodies.map((b) => b.instances !== undefined);
      expect(listed[0]).toBe(true);
      expect(cp.bodies[0]!.instances).toEqual([]);
      // 40 ms beats, a list at least every 400 ms: most beats list nothing, and a list comes again.
      expect(listed.filter((l) => !l).length).toBeGreaterThanOrEqual(8);
      expect(listed.slice(1).some((l) => l)).toBe(true);
    } finally {
      await cp.stop();
    }
  }, 10_000);

  it("list them on the beat after the control plane asked for it", async () => {
    const cp = await recording(false, 3, 60_000);
    try {
      await cp.until(6);
      // Well within the bulk-sync interval: only the asking made beat 4 list.
      expect(cp.bodies.slice(0, 6).map((b) => b.instances !== undefined)).toEqual([true, false, false, false, true, false]);
    } finally {
      await cp.stop();
    }
  }, 10_000);

  it("list them on every beat once the control plane refused a beat without a list", async () => {
    const cp = await recording(true);
    try {
      await cp.until(8);
      const listed = cp.bodies.map((b) => b.instances !== undefined);
      const refused = listed.indexOf(false);
      expect(refused).toBeGreaterThan(0);
      expect(listed.slice(refused + 1)).toEqual(listed.slice(refused + 1).map(() => true));
    } finally {
      await cp.stop();
    }
  }, 10_000);
});
