/**
 * A tenant's app floods its logs so the cell's batches would pass what the
 * control plane takes (issue 15, item 8), and a cell's log socket outliving
 * the app's last instance on it (item 9). The shipper runs for real over
 * real files; the server on the other end is a `ws` server with Cloudflare's
 * 1 MiB per-message limit (maxPayload: beyond it the socket is closed with
 * 1009, as the platform does), standing in for the production network that
 * cannot exist here. It acks batches, or refuses them as the log Durable
 * Object does (test/security/worker/log-flood-attacks.test.ts).
 */
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { LogShipper, type ShippedInstance } from "../../agent/logs/shipper";
import { MAX_LOG_BATCH_BYTES, MAX_LOG_LINE_BYTES, type LogLine } from "../../shared/protocol/logs";

const PLATFORM_MESSAGE_LIMIT = 1024 * 1024;

interface Received { bytes: number; lines: LogLine[] }
/** Log sockets the server saw open and close, by request path. */
let opened: string[];
let closed: string[];

let server: Server;
let wss: WebSocketServer;
let received: Received[];
/** What the server answers a batch with: an ack, or a refusal. */
let answer: (r: Received) => "ack" | "refuse";
let dir: string;
let shipper: LogShipper;
let instance: ShippedInstance;

beforeEach(async () => {
  received = [];
  opened = [];
  closed = [];
  answer = () => "ack";
  server = createServer();
  wss = new WebSocketServer({ server, maxPayload: PLATFORM_MESSAGE_LIMIT });
  wss.on("connection", (ws, req) => {
    opened.push(req.url ?? "");
    ws.on("close", () => closed.push(req.url ?? ""));
    ws.on("message", (data: Buffer) => {
      const r = { bytes: data.byteLength, lines: (JSON.parse(data.toString("utf8")) as { lines: LogLine[] }).lines };
      received.push(r);
      ws.send(JSON.stringify(answer(r) === "ack" ? { ack: r.lines.length } : { error: "log batch refused: invalid log batch" }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  dir = await mkdtemp(join(tmpdir(), "berth-log-flood-"));
  instance = { instanceGuid: "i-1", appGuid: "a-1", index: 0, logDir: dir };
  shipper = new LogShipper({
    apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, cellGuid: "c-1", credential: "x", stateDir: dir,
    intervalMs: 60_000, ackTimeoutMs: 5_000, log: pino({ level: "silent" }),
  });
  shipper.track(instance);
});

afterEach(async () => {
  await shipper.stop();
  for (const c of wss.clients) c.terminate();
  wss.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

const shippedLines = () => received.flatMap((r) => r.lines);

describe("log floods", () => {
  it("an app printing huge escape-heavy lines cannot make a batch the platform would cut: every batch fits and every line arrives, cut", async () => {
    // Control characters: six bytes of JSON each, so a 1 MiB read would become a 6 MiB message.
    await appendFile(join(dir, "stdout.log"), `${"\u0001".repeat(20_000)}\n`.repeat(300));
    for (let pass = 0; pass < 40 && shippedLines().length < 300; pass++) await shipper.shipAll();
    expect(shippedLines()).toHaveLength(300);
    expect(Math.max(...received.map((r) => r.bytes))).toBeLessThanOrEqual(MAX_LOG_BATCH_BYTES);
    expect(shippedLines().every((l) => l.truncated === true && new TextEncoder().encode(l.line).byteLength === MAX_LOG_LINE_BYTES)).toBe(true);
  });

  it("a batch the control plane refuses is dropped and never sent again; later lines still ship", async () => {
    answer = (r) => (r.lines.some((l) => l.line.startsWith("poison")) ? "refuse" : "ack");
    await appendFile(join(dir, "stdout.log"), "poison 1\npoison 2\n");
    await shipper.shipAll();
    expect(received).toHaveLength(1);
    await shipper.shipAll();
    await shipper.shipAll();
    expect(received).toHaveLength(1);
    await appendFile(join(dir, "stdout.log"), "fine\n");
    await shipper.shipAll();
    expect(received.map((r) => r.lines.map((l) => l.line))).toEqual([["poison 1", "poison 2"], ["fine"]]);
  });
});

describe("log sockets", () => {
  it("a cell's log socket for an app is closed when the app's last instance leaves the cell, not before", async () => {
    const second: ShippedInstance = { ...instance, instanceGuid: "i-2", index: 1, logDir: await mkdtemp(join(dir, "i-2-")) };
    shipper.track(second);
    await appendFile(join(dir, "stdout.log"), "from 0\n");
    await appendFile(join(second.logDir, "stdout.log"), "from 1\n");
    await shipper.shipAll();
    const socket = "/v3/cells/c-1/apps/a-1/logs";
    expect(opened).toEqual([socket]);
    await shipper.untrack(instance.instanceGuid);
    expect(closed).toEqual([]);
    await shipper.untrack(second.instanceGuid);
    await expect.poll(() => closed).toEqual([socket]);
    expect(shippedLines().map((l) => l.line).sort()).toEqual(["from 0", "from 1"]);
  });
});
