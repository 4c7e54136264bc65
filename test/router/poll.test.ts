/**
 * The real long-poll client (httpTableSource + startPoller) against a fake
 * control plane that speaks the route-table protocol (support.ts says why it
 * is a stand-in), feeding a real router.
 */
import { describe, expect, it } from "vitest";
import { startPoller, type Poller } from "../../agent/router/poller";
import { httpTableSource, type TableSource } from "../../agent/router/table-source";
import { ROUTER_ERROR_HEADER } from "../../agent/router/pages";
import type { RouteTable } from "../../shared/protocol/route-table";
import { captureLog, get, route, startFakeControlPlane, startRouter, until, whoAnswers, type FakeControlPlane, type RunningRouter } from "./support";
import { cleanupsAfterEach, startBackendIn } from "./cleanups";

const TOKEN = "router-test-token";
const SCHEDULE = { jitterMs: 5, backoffBaseMs: 20, backoffMaxMs: 100 };
const cleanups = cleanupsAfterEach();

async function fixture(options: { token?: string } = {}): Promise<{ cp: FakeControlPlane; r: RunningRouter; poller: Poller; lines: Record<string, unknown>[] }> {
  const cp = await startFakeControlPlane({ token: TOKEN, holdMs: 150 });
  cleanups.push(() => cp.stop());
  const r = await startRouter();
  cleanups.push(() => r.router.shutdown());
  const { log, lines } = captureLog();
  const poller = startPoller({
    source: httpTableSource({ apiUrl: cp.url, token: options.token ?? TOKEN, requestTimeoutMs: 2_000 }),
    schedule: SCHEDULE,
    onTable: (t) => r.router.applyTable(t),
    log,
  });
  cleanups.push(() => poller.stop());
  return { cp, r, poller, lines };
}

const backend = (name: string) => startBackendIn(cleanups, name);

describe("long-polling the control plane", () => {
  it("applies each published table and holds while nothing changes (204)", async () => {
    const { cp, r } = await fixture();
    const a = await backend("a");
    cp.publish([route("a.apps.test", a.port)]);
    await until(() => r.router.version === 1, 2_000, "table 1 applied");
    expect(await whoAnswers(r.port, "a.apps.test")).toBe("a");
    const before = cp.polls;
    await until(() => cp.polls >= before + 2, 2_000, "two held polls answered 204");
    expect(r.router.version).toBe(1);
    const b = await backend("b");
    cp.publish([route("a.apps.test", a.port), route("b.apps.test", b.port)]);
    await until(() => r.router.version === 2, 1_000, "table 2 applied");
    expect(await whoAnswers(r.port, "b.apps.test")).toBe("b");
  });

  it("sends no more traffic to an instance within 1 s of the table dropping it", async () => {
    const { cp, r } = await fixture();
    const keep = await backend("keep");
    const gone = await backend("gone");
    cp.publish([route("d.apps.test", keep.port, gone.port)]);
    await until(() => r.router.version === 1, 2_000, "table 1 applied");
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(await whoAnswers(r.port, "d.apps.test"));
    expect(seen).toEqual(new Set(["keep", "gone"]));
    cp.publish([route("d.apps.test", keep.port)]);
    await until(() => r.router.version === 2, 1_000, "removal applied within 1 s");
    const served = gone.requests.length;
    for (let i = 0; i < 10; i++) expect(await whoAnswers(r.port, "d.apps.test")).toBe("keep");
    expect(gone.requests.length).toBe(served);
  });

  it("keeps serving the last table while the control plane is away, and catches up when it returns", async () => {
    const { cp, r, poller, lines } = await fixture();
    const a = await backend("a");
    cp.publish([route("a.apps.test", a.port)]);
    await until(() => r.router.version === 1, 2_000, "table 1 applied");
    await cp.stop();
    await until(() => poller.failures >= 3, 2_000, "polls failing with backoff");
    expect(await whoAnswers(r.port, "a.apps.test")).toBe("a");
    expect(lines.some((l) => l.msg === "route table poll failed; serving the last table")).toBe(true);
    const b = await backend("b");
    cp.publish([route("b.apps.test", b.port)]);
    await cp.restart();
    await until(() => r.router.version === 2, 2_000, "table 2 applied after the control plane came back");
    expect(poller.failures).toBe(0);
    expect(await whoAnswers(r.port, "b.apps.test")).toBe("b");
    expect((await get(r.port, "a.apps.test")).status).toBe(404);
  });

  it("keeps retrying with backoff and serves nothing when the token is refused", async () => {
    const { cp, r, poller, lines } = await fixture({ token: "wrong" });
    cp.publish([route("a.apps.test", 1)]);
    await until(() => poller.failures >= 2, 2_000, "refused polls");
    expect(r.router.version).toBeUndefined();
    const reply = await get(r.port, "a.apps.test");
    expect(reply.status).toBe(503);
    expect(reply.headers[ROUTER_ERROR_HEADER.toLowerCase()]).toBe("table_not_loaded");
    const failure = lines.find((l) => l.msg === "route table poll failed; serving the last table")!;
    expect(JSON.stringify(failure.err)).toContain("HTTP 401");
  });

  it("rejects a malformed table and keeps the last good one", async () => {
    const { cp, r, poller, lines } = await fixture();
    const a = await backend("a");
    cp.publish([route("a.apps.test", a.port)]);
    await until(() => r.router.version === 1, 2_000, "table 1 applied");
    cp.misbehave({ status: 200, body: JSON.stringify({ version: 2, routes: [{ host: "bad host:80", instances: [] }] }) });
    cp.publish([]);
    await until(() => poller.failures >= 1, 2_000, "the bad table rejected");
    expect(JSON.stringify(lines.find((l) => l.msg === "route table poll failed; serving the last table")!.err)).toContain("invalid route table");
    cp.misbehave({ status: 200, body: "not json" });
    await until(() => poller.failures >= 2, 2_000, "the non-JSON body rejected");
    expect(r.router.version).toBe(1);
    expect(await whoAnswers(r.port, "a.apps.test")).toBe("a");
  });
});

describe("a pluggable table source", () => {
  it("is asked for the table after the version it last gave, and null means unchanged", async () => {
    const tables: (RouteTable | null)[] = [{ version: 7, routes: [] }, null, { version: 8, routes: [route("x.apps.test")] }];
    const asked: (number | undefined)[] = [];
    const applied: number[] = [];
    let release: () => void = () => undefined;
    const exhausted = new Promise<void>((resolve) => (release = resolve));
    const source: TableSource = async (after, signal) => {
      asked.push(after);
      const next = tables.shift();
      if (next !== undefined) return next;
      release();
      // Then behave like a long-poll that is held until the poller stops.
      return new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
    };
    const poller = startPoller({ source, schedule: SCHEDULE, onTable: (t) => applied.push(t.version), log: captureLog().log, random: () => 0 });
    await exhausted;
    await poller.stop();
    expect(asked).toEqual([undefined, 7, 7, 8]);
    expect(applied).toEqual([7, 8]);
    expect(poller.version).toBe(8);
  });
});
