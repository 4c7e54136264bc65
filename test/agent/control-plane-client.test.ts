/**
 * The cell's protocol client against a real HTTP server that misbehaves the
 * ways a network and an overloaded control plane do: no answer at all, headers
 * and then a stalled body. Every call fails within its timeout (the caller's
 * retry takes over) instead of hanging for fetch's own 300 s; the caller's own
 * abort still wins at once.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlaneClient, register } from "../../agent/cell/control-plane";

const held: ServerResponse[] = [];
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  held.push(res);
  // Reports get their headers and half a body, then nothing; everything else gets nothing.
  if (req.url?.endsWith("/instances")) {
    res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
    res.write('{"protocol":1,');
  }
});
let client: ControlPlaneClient;

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  client = new ControlPlaneClient(`http://127.0.0.1:${port}`, "cell-guid", "credential", { requestMs: 200, longPollMs: 400 });
});

afterAll(async () => {
  for (const res of held) res.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** The clock starts before the call is made: under load its synchronous part alone can take tens of ms. */
async function failsWithin<T>(makeCall: () => Promise<T>, minMs: number, maxMs: number): Promise<Error> {
  const started = Date.now();
  const err = await makeCall().then(() => new Error("resolved"), (e: Error) => e);
  const took = Date.now() - started;
  expect(took).toBeGreaterThanOrEqual(minMs - 20);
  expect(took).toBeLessThan(maxMs);
  return err;
}

describe("ControlPlaneClient timeouts", () => {
  it("gives up a long poll nobody answers after the long-poll timeout", async () => {
    const err = await failsWithin(() => client.desired(null), 400, 3000);
    expect(err.message).toBe("desired: no answer within 400 ms");
  });

  it("gives up a report whose body stalls after the headers", async () => {
    const err = await failsWithin(() => client.reportInstances([]), 200, 3000);
    expect(err.message).toBe("instance report: no answer within 200 ms");
  });

  it("takes a heartbeat's own timeout", async () => {
    const beat = { capacity: { memory_mb: 1, disk_mb: 1, containers: 1 }, free: { memory_mb: 1, disk_mb: 1, containers: 1 }, cached_layers: [], instances: [] };
    const err = await failsWithin(() => client.heartbeat(beat, undefined, 100), 100, 3000);
    expect(err.message).toBe("heartbeat: no answer within 100 ms");
  });

  it("bounds registration too", async () => {
    const registration = { enrollment_token: "t", name: "c", zone: "z", address: "192.0.2.1", capacity: { memory_mb: 1, disk_mb: 1, containers: 1 } };
    const err = await failsWithin(() => register(client.apiUrl, registration, 150), 150, 3000);
    expect(err.message).toBe("register: no answer within 150 ms");
  });

  it("stops at once when the caller aborts, with the caller's reason", async () => {
    const shutdown = new AbortController();
    setTimeout(() => shutdown.abort(new Error("agent stopping")), 50);
    const err = await failsWithin(() => client.desired(null, shutdown.signal), 50, 350);
    expect(err.message).toBe("agent stopping");
    const already = new AbortController();
    already.abort(new Error("stopped before"));
    await expect(client.desired(null, already.signal)).rejects.toThrow("stopped before");
  });
});
