/**
 * The apps' RTR lines: each proxied request ships one access line, in
 * Gorouter's format, to the app the route table says answered it, batched to
 * a stand-in control plane (the Worker's side is test/worker/platform-logs.test.ts);
 * the queue is bounded while the control plane is away.
 */
import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { AccessRecord } from "../../agent/router/access-log";
import { AppLogShipper, rtrLine } from "../../agent/router/app-log-shipper";
import type { RouteTable } from "../../shared/protocol/route-table";
import { captureLog, closeServer, DATA_PATH, get, listen, port, route, spawnRouterDaemon, startBackend, startFakeControlPlane, startRouter, until, type FakeControlPlane } from "./support";

const TOKEN = "app-logs-test-token";
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(limits: { maxQueuedLines?: number } = {}) {
  const cp = await startFakeControlPlane({ token: TOKEN, holdMs: 300 });
  cleanups.push(() => cp.stop());
  const a = await startBackend("a");
  const b = await startBackend("b");
  cleanups.push(() => a.close(), () => b.close());
  const table: RouteTable = { version: 1, routes: [route("a.apps.test", a.port), route("b.apps.test", b.port)] };
  const shipper = new AppLogShipper({
    apiUrl: cp.url, token: TOKEN, intervalMs: 60_000, requestTimeoutMs: 2_000,
    maxQueuedLines: limits.maxQueuedLines ?? 100, maxQueuedBytes: 1024 * 1024, log: captureLog().log,
  });
  shipper.applyTable(table);
  const r = await startRouter({ table, accessRecorded: (rec) => shipper.record(rec) });
  cleanups.push(() => r.router.shutdown());
  return { cp, shipper, routerPort: r.port, a, b };
}

describe("RTR lines", () => {
  it("a proxied request ships exactly one access line, in Gorouter's format, to the app that answered", async () => {
    const { cp, shipper, routerPort } = await setup();
    const reply = await get(routerPort, "a.apps.test", "/hello?x=1", { headers: { "user-agent": "curl/8.0", referer: "http://ref.test/", "x-request-id": "req-1" } });
    expect(reply.status).toBe(200);
    await until(() => shipper.queued === 1, 2_000, "the request's record");
    await shipper.flush();
    expect(cp.appLogs).toHaveLength(1);
    const [l] = cp.appLogs;
    expect(l).toMatchObject({ app_guid: "app-a.apps.test", instance_guid: expect.stringMatching(/^guid-a\.apps\.test-0-/) });
    expect(l!.line).toMatch(
      /^a\.apps\.test - \[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z\] "GET \/hello\?x=1 HTTP\/1\.1" 200 0 \d+ "http:\/\/ref\.test\/" "curl\/8\.0" "127\.0\.0\.1:\d+" "127\.0\.0\.1:\d+" x_forwarded_for:"127\.0\.0\.1" x_forwarded_proto:"http" vcap_request_id:"req-1" response_time:\d+\.\d{6} app_id:"app-a\.apps\.test" app_index:"0" instance_id:"guid-a\.apps\.test-0-\d+" x_cf_routererror:"-"$/,
    );
    expect(Math.abs(l!.timestamp - Date.now())).toBeLessThan(60_000);
    expect(shipper.queued).toBe(0);
  });

  it("a burst of requests over many connections ships a line for every one of them: none lost, none twice", async () => {
    const a = await startBackend("a");
    cleanups.push(() => a.close());
    const ids: string[] = [];
    const r = await startRouter({ table: { version: 1, routes: [route("a.apps.test", a.port)] }, accessRecorded: (rec) => ids.push(rec.requestId) });
    cleanups.push(() => r.router.shutdown());
    const N = 3_000;
    const sent: string[] = [];
    await Promise.all(Array.from({ length: 50 }, async (_, c) => {
      for (let i = c; i < N; i += 50) {
        sent.push(`burst-${i}`);
        expect((await get(r.port, "a.apps.test", "/", { headers: { "x-request-id": `burst-${i}` } })).status).toBe(200);
      }
    }));
    await until(() => ids.length >= N, 10_000, () => `${ids.length} of ${N} lines`);
    await new Promise((res) => setTimeout(res, 100));
    expect(ids.sort()).toEqual(sent.sort());
  }, 60_000);

  it("each line's start time is its own, to the nanosecond, for requests in one second and across seconds (times a double holds exactly at this epoch)", () => {
    const target = { appGuid: "app", instanceGuid: "inst", index: 0 };
    const started = (startedAt: number): AccessRecord => ({ host: "a.apps.test", method: "GET", url: "/", status: 200, upstream: null, attempts: 1, startedAt, now: startedAt + 1, requestId: "r", error: undefined });
    const origin = Date.UTC(2026, 11, 7, 0, 13, 13);
    const times = [0.25, 123.5, 999.75, 1000, 1000.5, 61_002.25].map((ms) => rtrLine(started(ms), target, origin).match(/\[(.*?)\]/)![1]);
    expect(times).toEqual([
      "2026-12-07T00:13:13.000250000Z",
      "2026-12-07T00:13:13.123500000Z",
      "2026-12-07T00:13:13.999750000Z",
      "2026-12-07T00:13:14.000000000Z",
      "2026-12-07T00:13:14.000500000Z",
      "2026-12-07T00:14:14.002250000Z",
    ]);
  });

  it("a request no instance took (unknown host) ships nothing", async () => {
    const { cp, shipper, routerPort } = await setup();
    expect((await get(routerPort, "nobody.apps.test")).status).toBe(404);
    await shipper.flush();
    expect(cp.appLogs).toEqual([]);
  });

  it("a tenant's client cannot forge fields or another app's line: quotes and newlines in its headers are escaped, and the app comes from the table", async () => {
    const { cp, shipper, routerPort } = await setup();
    const forged = 'x" app_id:"app-b.apps.test" app_index:"7';
    await get(routerPort, "a.apps.test", "/", { headers: { "user-agent": forged, "x-cf-app-instance": "app-b.apps.test:0", "x-request-id": 'id"\tx' } });
    await until(() => shipper.queued === 1, 2_000, "the request's record");
    await shipper.flush();
    expect(cp.appLogs.map((l) => l.app_guid)).toEqual(["app-a.apps.test"]);
    const line = cp.appLogs[0]!.line;
    expect(line).toContain('"x\\" app_id:\\"app-b.apps.test\\" app_index:\\"7"');
    expect(line).toContain('vcap_request_id:"id\\"\\x09x"');
    expect(line.match(/ app_id:"/g)).toHaveLength(1);
    expect(line).toContain(' app_id:"app-a.apps.test" ');
  });

  it("while the control plane is away lines wait up to the bound, more are dropped and counted, and the waiting ones go when it is back", async () => {
    const { cp, shipper, routerPort } = await setup({ maxQueuedLines: 3 });
    await cp.stop();
    for (let i = 0; i < 5; i++) expect((await get(routerPort, "a.apps.test", `/${i}`)).status).toBe(200);
    await until(() => shipper.queued + shipper.dropped.queue_full === 5, 2_000, "five records");
    await shipper.flush();
    expect(shipper.queued).toBe(3);
    expect(shipper.dropped.queue_full).toBe(2);
    await cp.restart();
    await shipper.flush();
    expect(cp.appLogs.map((l) => / "GET (\/\d) /.exec(l.line)?.[1])).toEqual(["/0", "/1", "/2"]);
    expect(shipper.queued).toBe(0);
  });
});

describe("when RTR lines are sent", () => {
  const target = route("a.apps.test", 4000);
  const record = (i: number): AccessRecord => ({
    host: "a.apps.test", method: "GET", url: `/${i}`, status: 200, upstream: `127.0.0.1:4000`, attempts: 1, startedAt: i, now: i + 1, requestId: `r-${i}`, error: undefined,
  });
  const shipperTo = (apiUrl: string) => {
    const shipper = new AppLogShipper({ apiUrl, token: TOKEN, intervalMs: 60_000, requestTimeoutMs: 2_000, maxQueuedLines: 100_000, maxQueuedBytes: 64 * 1024 * 1024, log: captureLog().log });
    shipper.applyTable({ version: 1, routes: [target] });
    cleanups.push(() => shipper.stop());
    return shipper;
  };

  it("a whole batch waiting goes at once, with what is queued behind it, not at the next interval; less than a batch waits", async () => {
    const cp = await startFakeControlPlane({ token: TOKEN, holdMs: 300 });
    cleanups.push(() => cp.stop());
    const shipper = shipperTo(cp.url).start();
    for (let i = 0; i < 1_000; i++) shipper.record(record(i));
    await until(() => cp.appLogs.length === 1_000, 5_000, () => `1,000 lines sent before the interval, not ${cp.appLogs.length}`);
    expect(cp.appLogs.map((l) => Number(/ "GET \/(\d+) /.exec(l.line)![1]))).toEqual(cp.appLogs.map((_, i) => i));
    await until(() => shipper.queued === 0, 2_000, "the last batch's answer");
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 1_000; i < 1_010; i++) shipper.record(record(i));
    await new Promise((r) => setTimeout(r, 200));
    // Less than a batch: it waits for the interval, a minute away.
    expect(shipper.queued).toBe(10);
    expect(cp.appLogs).toHaveLength(1_000);
  });

  it("a control plane that fails is not sent a batch per request: full batches wait for the interval", async () => {
    let posts = 0;
    const failing = http.createServer((req, res) => {
      posts++;
      req.resume().on("end", () => res.writeHead(503).end());
    });
    await listen(failing);
    cleanups.push(() => closeServer(failing));
    const shipper = shipperTo(`http://127.0.0.1:${port(failing)}`);
    for (let i = 0; i < 5_000; i++) {
      shipper.record(record(i));
      if (i % 500 === 0) await new Promise((r) => setTimeout(r, 20)); // room for a send to fail meanwhile
    }
    await shipper.flush();
    // One send found it failing (the first full batch), one was asked for here; none per request after.
    expect(posts).toBe(2);
    expect(shipper.queued).toBe(5_000);
  });
});

describe("RTR lines from the daemon", () => {
  it("with two cluster workers, a request's line reaches the control plane through the primary, with the router's token", async () => {
    const cp: FakeControlPlane = await startFakeControlPlane({ token: TOKEN, holdMs: 300 });
    cleanups.push(() => cp.stop());
    const a = await startBackend("a");
    cleanups.push(() => a.close());
    cp.publish([route("a.apps.test", a.port)]);
    const d = spawnRouterDaemon(
      ["--api-url", cp.url, "--listen", "127.0.0.1", "--port", "0", "--workers", "2", "--poll-jitter-ms", "0", "--app-log-interval-ms", "50"],
      { BERTH_ROUTER_TOKEN: TOKEN },
    );
    cleanups.push(() => d.kill());
    // Two cluster workers on the Node path; HAProxy with two threads, its lines parsed by the daemon, on the other.
    const synced = DATA_PATH === "node" ? "workers in sync" : "route table received";
    await until(() => d.lines.some((l) => l.msg === synced) && d.port() !== undefined, 60_000, () => `daemon up: ${d.stderr()}`);
    expect((await get(d.port()!, "a.apps.test", "/from-daemon")).status).toBe(200);
    await until(() => cp.appLogs.length >= 1, 10_000, "the RTR line at the control plane");
    await new Promise((r) => setTimeout(r, 300));
    expect(cp.appLogs).toHaveLength(1);
    expect(cp.appLogs[0]!.line).toContain('"GET /from-daemon HTTP/1.1" 200');
    expect(cp.appLogs[0]!.app_guid).toBe("app-a.apps.test");
  }, 120_000);
});
