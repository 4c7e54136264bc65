import { beforeEach, describe, expect, it, vi } from "vitest";
import { eq, inArray } from "drizzle-orm";
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import * as schema from "../../worker/db/schema";
import { ALARM_DUE_KEY } from "../../worker/durable/scheduler";
import { ADMIN, api, createSpace, db } from "./support";
import { setDocker } from "./app-fixtures";
import { appWithDroplet, emptyFleet, enroll, heartbeat, instancesOfApp, pass, report } from "./cell-fixtures";

const scheduler = () => env.SCHEDULER.get(env.SCHEDULER.idFromName("global"));
/**
 * Sets the alarm a minute ahead, for runDurableObjectAlarm to fire now (one due now would fire on its own);
 * `dueAt` is when the scheduler believes it was due (earlier than now: the alarm fires that late).
 */
const armAlarm = (dueAt = Date.now() + 60_000) => runInDurableObject(scheduler(), async (_obj, state) => {
  await state.storage.setAlarm(Date.now() + 60_000);
  await state.storage.put(ALARM_DUE_KEY, dueAt);
});
let space: { guid: string };

/** Each test starts from no running apps and no live cells (storage is shared within the file). */
beforeEach(async () => {
  space ??= await createSpace();
  await setDocker(true);
  await emptyFleet();
});

/** Starts the app and runs the pass its wake asked for (the request itself only wakes the scheduler). */
const start = async (appGuid: string) => {
  expect((await api("POST", `/v3/apps/${appGuid}/actions/start`, { token: ADMIN })).status).toBe(200);
  await pass();
};
const setOf = async (cell: { guid: string; credential: string }) => (await api("GET", `/v3/cells/${cell.guid}/desired`, { token: cell.credential })).json;
const runningReport = async (cell: { guid: string; credential: string }, guids: string[]) => {
  const res = await api("POST", `/v3/cells/${cell.guid}/instances`, { token: cell.credential, body: { protocol: 1, instances: guids.map((g) => report(g, "RUNNING")) } });
  await pass();
  return res;
};

describe("scheduler passes", () => {
  it("places a started app's instances across zones, into the cells' desired sets", async () => {
    const a = await enroll("cell", { zone: "za" });
    const b = await enroll("cell", { zone: "zb" });
    const app = await appWithDroplet(space.guid, { instances: 4 });
    await start(app.guid);
    const rows = await instancesOfApp(app.guid);
    expect(rows.map((r) => [r.index, r.state])).toEqual([[0, "CLAIMED"], [1, "CLAIMED"], [2, "CLAIMED"], [3, "CLAIMED"]]);
    expect(rows.filter((r) => r.cellGuid === a.guid)).toHaveLength(2);
    expect(rows.filter((r) => r.cellGuid === b.guid)).toHaveLength(2);
    const setA = await setOf(a);
    expect(setA.instances.map((i: { instance_guid: string }) => i.instance_guid).sort()).toEqual(rows.filter((r) => r.cellGuid === a.guid).map((r) => r.instanceGuid).sort());
    const events = await db().select().from(schema.auditEvents).where(eq(schema.auditEvents.targetGuid, app.guid));
    expect(events.find((e) => e.type === "app.instances_placed")!.data).toMatchObject({ reason: expect.stringContaining("missing") });
    // A second pass has nothing to do.
    expect(await pass()).toMatchObject({ placed: [], stopped: [], replaced: [], unplaced: [] });
  });

  it("stops every Docker instance when diego_docker is turned off, and brings them back when it is on", async () => {
    const cell = await enroll("cell");
    const app = await appWithDroplet(space.guid, { instances: 2 });
    await start(app.guid);
    const placed = await instancesOfApp(app.guid);
    await runningReport(cell, placed.map((r) => r.instanceGuid));
    const before = await setOf(cell);
    expect(before.instances).toHaveLength(2);

    await setDocker(false); // the flag endpoint wakes the scheduler
    await pass();
    const stopping = await instancesOfApp(app.guid);
    expect(stopping.map((r) => r.state)).toEqual(["STOPPING", "STOPPING"]);
    const after = await setOf(cell);
    expect(after.version).toBeGreaterThan(before.version);
    expect(after.instances).toEqual([]);
    const [appRow] = await db().select().from(schema.apps).where(eq(schema.apps.guid, app.guid));
    expect(appRow!.state).toBe("STARTED");
    const stops = (await db().select().from(schema.auditEvents).where(eq(schema.auditEvents.targetGuid, app.guid))).filter((e) => e.type === "app.instances_stopped");
    expect(stops.at(-1)!.data).toMatchObject({ reason: "feature flag diego_docker is disabled", instances: [expect.objectContaining({ cause: "diego_docker_disabled" }), expect.anything()] });
    const stats = await api("GET", `/v3/processes/${app.guid}/stats`, { token: ADMIN });
    expect(stats.json.resources.map((r: { state: string }) => r.state)).not.toContain("RUNNING");

    await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: heartbeat([]) });
    expect(await instancesOfApp(app.guid)).toEqual([]);
    await setDocker(true);
    await pass();
    expect((await instancesOfApp(app.guid)).map((r) => r.state)).toEqual(["CLAIMED", "CLAIMED"]);
  });

  it("stops the highest indices first on scale-down", async () => {
    await enroll("cell");
    const app = await appWithDroplet(space.guid, { instances: 3 });
    await start(app.guid);
    await db().update(schema.processes).set({ instances: 1 }).where(eq(schema.processes.guid, app.guid));
    const report = await pass();
    const rows = await instancesOfApp(app.guid);
    expect(report.stopped).toEqual([rows[2]!.instanceGuid, rows[1]!.instanceGuid]);
    expect(rows.map((r) => [r.index, r.state])).toEqual([[0, "CLAIMED"], [1, "STOPPING"], [2, "STOPPING"]]);
  });

  it("records a placement error when no cell has room, and places once one does", async () => {
    await enroll("cell");
    const app = await appWithDroplet(space.guid, { instances: 1, memory: 8192 });
    await start(app.guid);
    const [row] = await instancesOfApp(app.guid);
    expect(row).toMatchObject({ state: "UNCLAIMED", cellGuid: null, placementError: "insufficient resources: memory" });
    const stats = await api("GET", `/v3/processes/${app.guid}/stats`, { token: ADMIN });
    expect(stats.json.resources[0]).toMatchObject({ state: "DOWN", details: "insufficient resources: memory" });
    // The retry is on the alarm; the same failure records nothing new.
    expect((await pass()).unplaced).toEqual([]);
    const big = await enroll("cell", { capacity: { memory_mb: 16384, disk_mb: 16384, containers: 10 } });
    await pass();
    expect((await instancesOfApp(app.guid))[0]).toMatchObject({ state: "CLAIMED", cellGuid: big.guid, placementError: null });
  });

  it("replaces the instances of a cell that stopped heartbeating, keeping them routable until the replacement runs", async () => {
    const a = await enroll("cell", { zone: "za" });
    const b = await enroll("cell", { zone: "zb" });
    const app = await appWithDroplet(space.guid, { instances: 2 });
    await start(app.guid);
    const rows = await instancesOfApp(app.guid);
    const onA = rows.find((r) => r.cellGuid === a.guid)!;
    await runningReport(a, [onA.instanceGuid]);
    await api("POST", `/v3/cells/${b.guid}/heartbeat`, { token: b.credential, body: heartbeat([]) });
    await db().update(schema.cells).set({ lastHeartbeatAt: Date.now() - 60_000 }).where(eq(schema.cells.guid, a.guid));

    // The alarm, not a wake, notices the silence.
    await armAlarm();
    expect(await runDurableObjectAlarm(scheduler())).toBe(true);
    const [cellA] = await db().select().from(schema.cells).where(eq(schema.cells.guid, a.guid));
    expect(cellA!.state).toBe("LOST");
    const after = await instancesOfApp(app.guid);
    const suspect = after.find((r) => r.instanceGuid === onA.instanceGuid)!;
    expect(suspect).toMatchObject({ presence: "SUSPECT", state: "RUNNING" });
    const replacement = after.find((r) => r.index === onA.index && r.instanceGuid !== onA.instanceGuid)!;
    expect(replacement).toMatchObject({ cellGuid: b.guid, state: "CLAIMED", presence: "ORDINARY" });
    const lost = (await db().select().from(schema.auditEvents).where(eq(schema.auditEvents.targetGuid, app.guid))).find((e) => e.type === "app.instance_lost");
    expect(lost!.data).toMatchObject({ instances: [expect.objectContaining({ instance_guid: onA.instanceGuid, kept_as: "SUSPECT" })] });

    await runningReport(b, [replacement.instanceGuid]);
    const settled = await instancesOfApp(app.guid);
    expect(settled.find((r) => r.instanceGuid === onA.instanceGuid)).toBeUndefined();
    expect(settled.filter((r) => r.index === onA.index)).toHaveLength(1);
  });

  it("evacuates a drained cell: the running copy serves until its replacement runs", async () => {
    const a = await enroll("cell", { zone: "za" });
    const app = await appWithDroplet(space.guid, { instances: 1 });
    await start(app.guid);
    const [first] = await instancesOfApp(app.guid);
    await runningReport(a, [first!.instanceGuid]);
    const b = await enroll("cell", { zone: "zb" });
    expect((await api("POST", `/v3/cells/${a.guid}/actions/drain`, { token: ADMIN })).status).toBe(202);
    await pass();
    const during = await instancesOfApp(app.guid);
    expect(during.find((r) => r.instanceGuid === first!.instanceGuid)).toMatchObject({ presence: "EVACUATING", state: "RUNNING" });
    const replacement = during.find((r) => r.instanceGuid !== first!.instanceGuid)!;
    expect(replacement).toMatchObject({ cellGuid: b.guid, state: "CLAIMED" });

    await runningReport(b, [replacement.instanceGuid]);
    expect((await instancesOfApp(app.guid)).find((r) => r.instanceGuid === first!.instanceGuid)).toMatchObject({ state: "STOPPING" });
    expect((await setOf(a)).instances).toEqual([]);
  });

  it("holds a third crash for 30 s, with the alarm set for its end", async () => {
    const cell = await enroll("cell");
    const app = await appWithDroplet(space.guid, { instances: 1 });
    await start(app.guid);
    const [row] = await instancesOfApp(app.guid);
    await db().update(schema.instances).set({ crashCount: 2 }).where(eq(schema.instances.instanceGuid, row!.instanceGuid));
    await api("POST", `/v3/cells/${cell.guid}/instances`, { token: cell.credential, body: { protocol: 1, instances: [report(row!.instanceGuid, "CRASHED", { exit: { status: 1, signal: null, oom: false } })] } });
    await pass();
    const [crashed] = await instancesOfApp(app.guid);
    expect(crashed).toMatchObject({ instanceGuid: row!.instanceGuid, state: "CRASHED", crashCount: 3, crashReason: "exited with status 1" });
    // The alarm is due no later than the backoff's end (the cell's heartbeat expiry may come first).
    // (The report's own wake may still be setting the alarm to now: wait for the pass it runs.)
    const alarm = await vi.waitFor(async () => {
      const at = await runInDurableObject(scheduler(), async (_obj, state) => state.storage.getAlarm());
      expect(at).toBeGreaterThan(Date.now());
      return at;
    });
    expect(alarm).toBeLessThanOrEqual(crashed!.since + 30_000);
    expect((await pass()).replaced).toEqual([]);
    // Once the backoff is over (moved into the past here), the alarm restarts it.
    await db().update(schema.instances).set({ since: Date.now() - 30_001 }).where(eq(schema.instances.instanceGuid, row!.instanceGuid));
    await armAlarm();
    expect(await runDurableObjectAlarm(scheduler())).toBe(true);
    const [restarted] = await instancesOfApp(app.guid);
    expect(restarted).toMatchObject({ state: "CLAIMED", crashCount: 3, index: 0 });
    expect(restarted!.instanceGuid).not.toBe(row!.instanceGuid);
  });

  it("places again a claim its live cell never acknowledged, once the claim timeout passes", async () => {
    const a = await enroll("cell", { zone: "za" });
    const app = await appWithDroplet(space.guid, { instances: 1 });
    await start(app.guid);
    const [claimed] = await instancesOfApp(app.guid);
    expect(claimed).toMatchObject({ state: "CLAIMED", cellGuid: a.guid });
    // The alarm is due no later than the claim's timeout.
    const alarm = await runInDurableObject(scheduler(), async (_obj, state) => state.storage.getAlarm());
    expect(alarm).toBeLessThanOrEqual(claimed!.since + 30_001);
    // Still heartbeating (without the instance), 40 s after the claim.
    await api("POST", `/v3/cells/${a.guid}/heartbeat`, { token: a.credential, body: heartbeat([]) });
    await db().update(schema.instances).set({ since: Date.now() - 40_000 }).where(eq(schema.instances.instanceGuid, claimed!.instanceGuid));
    await armAlarm();
    expect(await runDurableObjectAlarm(scheduler())).toBe(true);
    const rows = await instancesOfApp(app.guid);
    const again = rows.find((r) => r.instanceGuid !== claimed!.instanceGuid);
    expect(again).toMatchObject({ state: "CLAIMED", index: 0, cellGuid: a.guid, crashCount: 0 });
    expect(rows.find((r) => r.instanceGuid === claimed!.instanceGuid)).toMatchObject({ state: "STOPPING" });
    expect((await setOf(a)).instances.map((i: { instance_guid: string }) => i.instance_guid)).toEqual([again!.instanceGuid]);
    // The cell's next heartbeat does not list the old claim: it is forgotten.
    await api("POST", `/v3/cells/${a.guid}/heartbeat`, { token: a.credential, body: heartbeat([]) });
    expect((await instancesOfApp(app.guid)).map((r) => r.instanceGuid)).toEqual([again!.instanceGuid]);
    const replaced = (await db().select().from(schema.auditEvents).where(eq(schema.auditEvents.targetGuid, app.guid))).find((e) => e.type === "app.instances_replaced");
    expect(JSON.stringify(replaced!.data)).toContain("did not acknowledge it within 30 s");
  });

  it("keeps a claim past its timeout until its cell heartbeats after the timeout without it", async () => {
    const a = await enroll("cell", { zone: "za" });
    const app = await appWithDroplet(space.guid, { instances: 1 });
    await start(app.guid);
    const [claimed] = await instancesOfApp(app.guid);
    // Claimed 40 s ago; the cell's last heartbeat came 12 s ago, before the timeout ran out (the control plane was slow to take a newer one).
    await db().update(schema.instances).set({ since: Date.now() - 40_000 }).where(eq(schema.instances.instanceGuid, claimed!.instanceGuid));
    await db().update(schema.cells).set({ lastHeartbeatAt: Date.now() - 12_000 }).where(eq(schema.cells.guid, a.guid));
    await armAlarm();
    expect(await runDurableObjectAlarm(scheduler())).toBe(true);
    expect(await instancesOfApp(app.guid)).toMatchObject([{ instanceGuid: claimed!.instanceGuid, state: "CLAIMED" }]);
    // A heartbeat after the timeout that does not list it: the cell never took it.
    await api("POST", `/v3/cells/${a.guid}/heartbeat`, { token: a.credential, body: heartbeat([]) });
    await armAlarm();
    expect(await runDurableObjectAlarm(scheduler())).toBe(true);
    const rows = await instancesOfApp(app.guid);
    expect(rows.find((r) => r.instanceGuid === claimed!.instanceGuid)).toMatchObject({ state: "STOPPING" });
    expect(rows.find((r) => r.instanceGuid !== claimed!.instanceGuid)).toMatchObject({ state: "CLAIMED", cellGuid: a.guid });
  });

  it("never runs two passes at once: concurrent wakes place each index once", async () => {
    await enroll("cell");
    await enroll("cell");
    const app = await appWithDroplet(space.guid, { instances: 5 });
    await db().update(schema.apps).set({ state: "STARTED" }).where(eq(schema.apps.guid, app.guid));
    await Promise.all([pass(), pass(), pass(), pass()]);
    const rows = await instancesOfApp(app.guid);
    expect(rows.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
  });

  it("lists running instances in the route table at their cell's address and host port", async () => {
    const cell = await enroll("cell", { address: "10.7.0.7" });
    const app = await appWithDroplet(space.guid, { instances: 1 });
    const route = await api("POST", "/v3/routes", { token: ADMIN, body: { host: `r${Date.now()}`, relationships: { space: { data: { guid: space.guid } } } } });
    expect(route.status).toBe(201);
    await api("POST", `/v3/routes/${route.json.guid}/destinations`, { token: ADMIN, body: { destinations: [{ app: { guid: app.guid } }] } });
    await start(app.guid);
    const router = await enroll("router");
    const before = await api("GET", "/v3/routes/table", { token: router.credential });
    const host = `${route.json.host}.apps.localhost`;
    expect(before.json.routes.find((r: { host: string }) => r.host === host)).toEqual({ host, instances: [] });
    const poll = api("GET", `/v3/routes/table?after=${before.json.version}`, { token: router.credential });
    const [row] = await instancesOfApp(app.guid);
    await runningReport(cell, [row!.instanceGuid]);
    const changed = await poll;
    expect(changed.status).toBe(200);
    expect(changed.json.routes.find((r: { host: string }) => r.host === host)).toEqual({
      host, instances: [{ instance_guid: row!.instanceGuid, app_guid: app.guid, address: "10.7.0.7", port: 61001, index: 0 }],
    });
    await db().delete(schema.routeDestinations).where(inArray(schema.routeDestinations.routeGuid, [route.json.guid]));
  });

  // Last: the stall it causes stays in the scheduler's memory for the rest of the file.
  it("does not count its own late alarm against a cell: silent through the stall, it stays ACTIVE; silent beyond it, it is LOST", async () => {
    const a = await enroll("cell", { zone: "za" });
    const b = await enroll("cell", { zone: "zb" });
    const app = await appWithDroplet(space.guid, { instances: 2 });
    await start(app.guid);
    const onA = (await instancesOfApp(app.guid)).find((r) => r.cellGuid === a.guid)!;
    await runningReport(a, [onA.instanceGuid]);
    await api("POST", `/v3/cells/${b.guid}/heartbeat`, { token: b.credential, body: heartbeat([]) });
    // 20 s since a's heartbeat, but the alarm was due 10 s ago: 9 s (beyond the 1 s slack) were the scheduler's, 11 s < the 15 s TTL.
    await db().update(schema.cells).set({ lastHeartbeatAt: Date.now() - 20_000 }).where(eq(schema.cells.guid, a.guid));
    await armAlarm(Date.now() - 10_000);
    expect(await runDurableObjectAlarm(scheduler())).toBe(true);
    const [kept] = await db().select().from(schema.cells).where(eq(schema.cells.guid, a.guid));
    expect(kept!.state).toBe("ACTIVE");
    expect((await instancesOfApp(app.guid)).filter((r) => r.index === onA.index)).toMatchObject([{ instanceGuid: onA.instanceGuid, presence: "ORDINARY", state: "RUNNING" }]);

    // Truly silent: 60 s, of which the stall explains 9 s.
    await db().update(schema.cells).set({ lastHeartbeatAt: Date.now() - 60_000 }).where(eq(schema.cells.guid, a.guid));
    await armAlarm();
    expect(await runDurableObjectAlarm(scheduler())).toBe(true);
    const [lost] = await db().select().from(schema.cells).where(eq(schema.cells.guid, a.guid));
    expect(lost!.state).toBe("LOST");
    expect((await instancesOfApp(app.guid)).find((r) => r.instanceGuid === onA.instanceGuid)).toMatchObject({ presence: "SUSPECT" });
  });

  it("does not count a stall a slow heartbeat reported against a cell", async () => {
    const a = await enroll("cell", { zone: "za" });
    await enroll("cell", { zone: "zb" });
    // 20 s since a's heartbeat; another cell's heartbeat took the last 12 s to commit (D1 congested) and told the scheduler.
    await db().update(schema.cells).set({ lastHeartbeatAt: Date.now() - 20_000 }).where(eq(schema.cells.guid, a.guid));
    await scheduler().noteStall(Date.now() - 12_000, Date.now());
    await armAlarm();
    expect(await runDurableObjectAlarm(scheduler())).toBe(true);
    const [kept] = await db().select().from(schema.cells).where(eq(schema.cells.guid, a.guid));
    expect(kept!.state).toBe("ACTIVE");
  });
});
