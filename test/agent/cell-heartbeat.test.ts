/**
 * The cell agent's heartbeat loop against a real HTTP server standing in for
 * a control plane that holds one heartbeat without answering (an overloaded
 * request, or a connection a middlebox dropped silently): the agent gives
 * that beat up after two intervals and sends it again, instead of going
 * quiet until fetch's own 300 s header timeout while the cell's presence
 * (15 s) expires.
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
    agent = new CellAgent(
      {
        stateDir: dir, capacity: { memory_mb: 1024, disk_mb: 1024, containers: 4 }, heartbeatIntervalMs: 200,
        pollJitterMs: 0, backoff: { baseMs: 50, maxMs: 200 }, runner: defaultRunnerConfig,
      },
      {
        client: new ControlPlaneClient(`http://127.0.0.1:${port}`, "cell-guid", "credential"),
        // No instance is desired here, so no container is ever started: the driver is never called.
        driver: {} as ContainerDriver,
        log: pino({ level: "silent" }),
        cachedLayers: async () => [],
        stage: async () => {
          throw new Error("no staging in this test");
        },
      },
    );
    await agent.start();
    await secondBeat;
    expect(beats).toBeGreaterThanOrEqual(2);
    expect(held).toHaveLength(1);
  }, 5_000);
});
