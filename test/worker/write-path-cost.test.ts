/**
 * What the agent protocol's hot writes ask of D1, counted (worker/http/d1-tally):
 * a steady heartbeat is one round trip that reads its own cell's rows (none
 * when it lists no instances) and nothing of the fleet, its credential checked in that same batch; a router's
 * credential is one lookup (a cell's, off its hot routes); a cell's
 * staging result commits its outcome and its cell's version bump in one batch.
 * Counts, not timings: they hold on any machine.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { drizzle } from "drizzle-orm/d1";
import { eq, inArray } from "drizzle-orm";
import { env } from "cloudflare:workers";
import * as schema from "../../worker/db/schema";
import { emptyTally, tallied, type D1Tally } from "../../worker/http/d1-tally";
import { connect } from "../../worker/db/connect";
import { recordHeartbeat, recordInstanceReports } from "../../worker/scheduling/reports";
import { cellClaimFor } from "../../worker/routes/cells";
import { buildDesiredSet } from "../../worker/scheduling/desired-set";
import { isInstanceRef, type DesiredInstance } from "../../shared/protocol/desired-set";
import { cellLoadQuery, oldestClaimQuery } from "../../worker/scheduling/snapshot";
import { BOOTSTRAP_ADMIN, resolvePrincipal } from "../../worker/auth/principal";
import { failStaging } from "../../worker/staging/stage";
import { readCellSetVersion, readVersion, versionBumps } from "../../worker/scheduling/versions";
import { changeAppState, getApp } from "../../worker/db/apps";
import { listInstancesOfProcess } from "../../worker/db/instances";
import { appStartQuotaReads, checkAppStartQuotas } from "../../worker/quotas/repo";
import { DEFAULT_CONVERGENCE_CONFIG } from "../../shared/convergence/config";
import { commitWriteSet } from "../../worker/db/write-set";
import type { WriteOp } from "../../worker/scheduling/write-set";
import { ADMIN, api, createSpace, createUser, db } from "./support";
import { setDocker } from "./app-fixtures";
import { appWithDroplet, credentialOf, enroll, heartbeat, instancesOfApp, onlyActiveCell, pass, presence, report } from "./cell-fixtures";

/** A Db counting into a tally, and the SQL of every statement prepared through it. */
function countingDb(): { db: ReturnType<typeof db>; tally: D1Tally; sql: string[] } {
  const sql: string[] = [];
  const recording = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => (sql.push(query), target.prepare(query));
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  const tally = emptyTally();
  return { db: drizzle(tallied(recording, tally), { schema }), tally, sql };
}

let space: { guid: string };
beforeAll(async () => {
  await setDocker(true);
  space = await createSpace();
});

/** An app of `count` instances RUNNING on a cell of its own (placed by a pass, reported by the cell). */
async function runningOnOwnCell(count: number) {
  const cell = await enroll("cell");
  await onlyActiveCell(cell.guid);
  const app = await appWithDroplet(space.guid, { instances: count, memory: 64 });
  expect((await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: ADMIN })).status).toBe(200);
  await pass();
  const placed = await instancesOfApp(app.guid);
  expect(placed.map((i) => i.cellGuid)).toEqual(placed.map(() => cell.guid));
  const reports = placed.map((i) => report(i.instanceGuid, "RUNNING"));
  expect((await api("POST", `/v3/cells/${cell.guid}/instances`, { token: cell.credential, body: { protocol: 1, instances: reports } })).status).toBe(200);
  return { cell, app, reports };
}

describe("the Db of a request or pass", () => {
  it("is built once per D1 binding, and counts into its own tally only when profiling", async () => {
    expect(connect(env.DB)).toBe(connect(env.DB));
    const tally = emptyTally();
    const counted = connect(env.DB, tally);
    expect(counted).not.toBe(connect(env.DB));
    await counted.select({ guid: schema.cells.guid }).from(schema.cells).limit(1);
    expect(tally.roundTrips).toBe(1);
    await connect(env.DB).select({ guid: schema.cells.guid }).from(schema.cells).limit(1);
    expect(tally.roundTrips).toBe(1);
  });
});

describe("a cell's heartbeat", () => {
  it("is one D1 round trip when nothing but usage changed, reading only its own cell's instances and writing only its cell's row", async () => {
    await runningOnOwnCell(5); // another cell's fleet, which the heartbeat must not read
    const { cell, app, reports } = await runningOnOwnCell(3);
    const credential = await credentialOf(cell);
    const { db: counted, tally, sql } = countingDb();
    const before = Date.now();
    const used = reports.map((r, i) => ({ ...r, usage: { cpu: 0.1 * i, mem: 1000 + i, disk: 2000 + i } }));
    const outcome = await recordHeartbeat(counted, credential, { ...heartbeat(used), protocol: 1 as const }, before, DEFAULT_CONVERGENCE_CONFIG.restart);
    expect(outcome).toEqual({ rejected: [], sources: [] });
    expect(tally.roundTrips).toBe(1);
    expect(sql.filter((q) => /^update "instances"/i.test(q))).toEqual([]);
    const shown = await listInstancesOfProcess(db(), app.guid);
    expect(shown.map((i) => [i.instanceGuid, i.usage, i.usageAt])).toEqual(used.map((r) => [r.instance_guid, r.usage, before]));
    const instanceReads = sql.filter((q) => /^select/i.test(q) && /from "instances"/.test(q));
    expect(instanceReads.length).toBe(1);
    expect(instanceReads[0]).toMatch(/where \("instances"\."cell_guid" = \? and exists \(select 1 from "cells" where \("cells"\."guid" = \? and "cells"\."token_hash" = \?\)\)\)/);
    // Nor, per row, whether a pass awaits it (other copies of its index, its app's deployments): reports ask that.
    expect(instanceReads[0]).not.toMatch(/ as twin|from "deployments"/);
    const [row] = await db().select().from(schema.cells).where(eq(schema.cells.guid, cell.guid));
    expect(row!.lastHeartbeatAt).toBe(before);
  });

  it("without a list of instances, is one round trip that reads of its instances only whether one is STOPPING, and wakes the scheduler only for a cell back or resized", async () => {
    const cell = await enroll("cell");
    const credential = await credentialOf(cell);
    const { db: counted, tally, sql } = countingDb();
    const beat = { ...presence(), protocol: 1 as const };
    expect(await recordHeartbeat(counted, credential, beat, Date.now(), DEFAULT_CONVERGENCE_CONFIG.restart)).toEqual({ rejected: [], sources: [] });
    expect(tally.roundTrips).toBe(1);
    const instanceReads = sql.filter((q) => /from "instances"/.test(q));
    expect(instanceReads).toHaveLength(1);
    expect(instanceReads[0]).toMatch(/"instances"\."state" = \?.* limit \?$/);
    await db().update(schema.cells).set({ state: "LOST" }).where(eq(schema.cells.guid, cell.guid));
    // Back from LOST: the scheduler looks at the cell, and the cell's next beat lists what it runs.
    expect(await recordHeartbeat(counted, credential, beat, Date.now(), DEFAULT_CONVERGENCE_CONFIG.restart)).toEqual({ rejected: [], sources: [], listInstances: true, wake: { apps: [], cells: [cell.guid] } });
    const resized = { ...beat, capacity: { memory_mb: 1024, disk_mb: 8192, containers: 20 } };
    expect((await recordHeartbeat(counted, credential, resized, Date.now(), DEFAULT_CONVERGENCE_CONFIG.restart))!.wake).toEqual({ apps: [], cells: [cell.guid] });
    expect(await recordHeartbeat(counted, credential, resized, Date.now(), DEFAULT_CONVERGENCE_CONFIG.restart)).toEqual({ rejected: [], sources: [] });
  });

  it("takes a second round trip only for reports that change rows", async () => {
    const { cell, reports } = await runningOnOwnCell(2);
    const credential = await credentialOf(cell);
    const { db: counted, tally } = countingDb();
    const crashed = { ...reports[0]!, state: "CRASHED" as const, host_port: null, exit: { status: 1, signal: null, oom: false } };
    const outcome = (await recordHeartbeat(counted, credential, { ...heartbeat([crashed, reports[1]!]), protocol: 1 as const }, Date.now(), DEFAULT_CONVERGENCE_CONFIG.restart))!;
    expect(tally.roundTrips).toBe(2);
    // Each with the version the batch moved it to (read back in that batch), which the channels pass on as is.
    expect(outcome.sources).toEqual(expect.arrayContaining([{ kind: "cell", cellGuid: cell.guid, version: await readCellSetVersion(db(), cell.guid) }, { kind: "routes_table", version: await readVersion(db(), { kind: "routes_table" }) }]));
    const [row] = await db().select().from(schema.instances).where(eq(schema.instances.instanceGuid, crashed.instance_guid));
    expect(row!.state).toBe("CRASHED");
  });
});

describe("a cell's desired set", () => {
  it("is one D1 batch, its version and registry access read with its instances", async () => {
    const { cell, app, reports } = await runningOnOwnCell(2);
    const { db: counted, tally } = countingDb();
    const set = await buildDesiredSet(counted, env, await credentialOf(cell));
    expect(tally.roundTrips).toBe(1);
    // (Other tests' instances may have moved onto this cell: only this app's are looked at.)
    const mine = set!.instances.filter((i) => i.process_guid === app.guid).map((i) => i.instance_guid);
    expect(mine.sort()).toEqual(reports.map((r) => r.instance_guid).sort());
    // The version the set carries is the one a watcher compares with.
    const current = await api("GET", `/v3/cells/${cell.guid}/desired`, { token: cell.credential });
    expect(current.json.version).toBe(set!.version);
    expect(set!.registry_access.version).toBe(current.json.registry_access.version);
  });

  it("asked with specs=new, carries only the specs of instances placed and not yet taken; those the cell took are references", async () => {
    const { cell, app, reports } = await runningOnOwnCell(2);
    expect((await api("POST", `/v3/processes/${app.guid}/actions/scale`, { token: ADMIN, body: { instances: 3 } })).status).toBe(202);
    await pass();
    const placed = (await instancesOfApp(app.guid)).find((i) => i.state === "CLAIMED");
    expect(placed?.cellGuid).toBe(cell.guid);
    const { db: counted, sql } = countingDb();
    const set = await buildDesiredSet(counted, env, await credentialOf(cell), "new");
    const mine = set!.instances.filter((i) => i.process_guid === app.guid);
    expect(mine.filter(isInstanceRef).sort((a, b) => a.index - b.index)).toEqual(
      reports.map((r, index) => ({ instance_guid: r.instance_guid, process_guid: app.guid, index, taken: true })),
    );
    expect(mine.filter((i) => !isInstanceRef(i))).toEqual([expect.objectContaining({ instance_guid: placed!.instanceGuid, app_guid: app.guid, index: 2 })]);
    // The taken instances' specs are not even read.
    expect(sql.some((q) => q.includes(`case when "state" = 'CLAIMED' then "spec" end`)), sql.join("\n")).toBe(true);
    // Over the API: the same with specs=new; every spec without it (cells that predate references).
    const asked = await api("GET", `/v3/cells/${cell.guid}/desired?specs=new`, { token: cell.credential });
    expect((asked.json.instances as DesiredInstance[]).filter((i) => i.process_guid === app.guid && isInstanceRef(i))).toHaveLength(2);
    const whole = await api("GET", `/v3/cells/${cell.guid}/desired`, { token: cell.credential });
    expect((whole.json.instances as DesiredInstance[]).filter((i) => i.process_guid === app.guid).map((i) => isInstanceRef(i))).toEqual([false, false, false]);
    const bad = await api("GET", `/v3/cells/${cell.guid}/desired?specs=some`, { token: cell.credential });
    expect([bad.status, JSON.stringify(bad.json)]).toEqual([422, expect.stringContaining("specs")]);
    // Gone, so the tests after it find room on their cells (each drains the ones before).
    expect((await api("POST", `/v3/apps/${app.guid}/actions/stop`, { token: ADMIN })).status).toBe(200);
    await db().delete(schema.instances).where(eq(schema.instances.appGuid, app.guid));
  });
});

describe("credentials", () => {
  it("a cell's or a router's credential is one lookup, in its own table", async () => {
    const cell = await enroll("cell");
    const router = await enroll("router");
    for (const [who, kind] of [[cell, "cell"], [router, "router"]] as const) {
      const { db: counted, tally } = countingDb();
      expect(await resolvePrincipal(counted, `Bearer ${who.credential}`, env)).toEqual({ kind, guid: who.guid, name: who.name });
      expect(tally.roundTrips).toBe(1);
    }
  });

  it("on a cell's hot routes (heartbeat, reports, desired set) is left to the route's own first batch: no lookup before it", async () => {
    const cell = await enroll("cell");
    const { db: counted, tally } = countingDb();
    const claim = await resolvePrincipal(counted, `Bearer ${cell.credential}`, env, Date.now(), cell.guid);
    expect(claim).toEqual({ kind: "cell-claim", guid: cell.guid, tokenHash: (await credentialOf(cell)).tokenHash });
    expect(tally.roundTrips).toBe(0);
    // Only a cell's token is left so: the admin's, a user's or a router's is resolved as anywhere else.
    const router = await enroll("router");
    expect(await resolvePrincipal(db(), `Bearer ${router.credential}`, env, Date.now(), cell.guid)).toMatchObject({ kind: "router", guid: router.guid });
    expect(await resolvePrincipal(db(), `Bearer ${ADMIN}`, env, Date.now(), cell.guid)).toEqual(BOOTSTRAP_ADMIN);
    // Which requests: the agent protocol's three hot routes, by method.
    expect(cellClaimFor("POST", `/v3/cells/${cell.guid}/heartbeat`)).toBe(cell.guid);
    expect(cellClaimFor("POST", `/v3/cells/${cell.guid}/instances`)).toBe(cell.guid);
    expect(cellClaimFor("GET", `/v3/cells/${cell.guid}/desired`)).toBe(cell.guid);
    expect(cellClaimFor("HEAD", `/v3/cells/${cell.guid}/desired`)).toBe(cell.guid);
    expect(cellClaimFor("POST", "/v3/cells/%ZZ/heartbeat")).toBeUndefined();
    for (const [method, path] of [["GET", `/v3/cells/${cell.guid}/heartbeat`], ["POST", `/v3/cells/${cell.guid}/desired`], ["GET", `/v3/cells/${cell.guid}`],
      ["POST", `/v3/cells/${cell.guid}/staging_results`], ["GET", `/v3/cells/${cell.guid}/desired/watch`], ["POST", `/v3/cells/${cell.guid}/logs`]]) {
      expect(cellClaimFor(method!, path!), `${method} ${path}`).toBeUndefined();
    }
  });

  it("a heartbeat or report whose token is not the cell's own writes nothing", async () => {
    const { cell, reports } = await runningOnOwnCell(1);
    const other = await enroll("cell");
    const [before] = await db().select().from(schema.cells).where(eq(schema.cells.guid, cell.guid));
    const wrong = { guid: cell.guid, tokenHash: (await credentialOf(other)).tokenHash };
    const crashed = { ...reports[0]!, state: "CRASHED" as const, host_port: null, exit: { status: 1, signal: null, oom: false } };
    const beat = { ...heartbeat([crashed], { capacity: { memory_mb: 1, disk_mb: 1, containers: 1 } }), protocol: 1 as const };
    expect(await recordHeartbeat(db(), wrong, beat, Date.now() + 60_000, DEFAULT_CONVERGENCE_CONFIG.restart)).toBeNull();
    expect(await recordInstanceReports(db(), wrong, [crashed], Date.now(), DEFAULT_CONVERGENCE_CONFIG.restart)).toBeNull();
    const [after] = await db().select().from(schema.cells).where(eq(schema.cells.guid, cell.guid));
    expect(after).toEqual(before);
    const [row] = await db().select().from(schema.instances).where(eq(schema.instances.instanceGuid, crashed.instance_guid));
    expect(row!.state).toBe("RUNNING");
    expect(await buildDesiredSet(db(), env, wrong)).toBeUndefined();
  });

  it("a token dressed as a cell's but matching no cell is refused, even if a user holds it", async () => {
    const user = await createUser();
    // The prefix only chooses the table: a user's token given a cell's prefix is another token, matching nothing.
    const forged = `bc_${user.token.slice(3)}`;
    await expect(resolvePrincipal(db(), `Bearer ${forged}`, env)).rejects.toMatchObject({ status: 401 });
    const res = await api("GET", "/v3/cells/00000000-0000-0000-0000-000000000000/desired", { token: forged });
    expect(res.status).toBe(401);
    // The user's own token still works.
    expect(await resolvePrincipal(db(), `Bearer ${user.token}`, env)).toMatchObject({ kind: "user", guid: user.guid });
  });
});

describe("a cell's staging result", () => {
  it("commits the build's outcome and the cell's version bump in one batch", async () => {
    const cell = await enroll("cell");
    const app = await appWithDroplet(space.guid);
    const pkg = await api("POST", "/v3/packages", { token: ADMIN, body: { type: "docker", relationships: { app: { data: { guid: app.guid } } }, data: { image: "private.registry:5000/web:2" } } });
    expect(pkg.status).toBe(201);
    const build = crypto.randomUUID();
    await db().insert(schema.builds).values({ guid: build, appGuid: app.guid, packageGuid: pkg.json.guid, state: "STAGING", stagingLocation: "cell", stagingCellGuid: cell.guid, createdByGuid: "admin" });
    const [before] = await db().select({ v: schema.cells.desiredVersion }).from(schema.cells).where(eq(schema.cells.guid, cell.guid));
    const { db: counted, tally } = countingDb();
    const bumps = versionBumps(counted, { cells: [cell.guid] });
    // STG lines go to the app's log store, not D1: a writer that keeps nothing here.
    const outcome = await failStaging(counted, { buildGuid: build, appGuid: app.guid }, "manifest unknown", "cell", { now: () => new Date(), log: () => {}, stg: async () => {} }, bumps.statements);
    expect(outcome.state).toBe("FAILED");
    // The outcome, the bump, and the registry access version the bump reads back with it (a set's version counts both).
    expect(tally).toMatchObject({ roundTrips: 1, statements: 3 });
    const [after] = await db().select({ v: schema.cells.desiredVersion }).from(schema.cells).where(eq(schema.cells.guid, cell.guid));
    expect(after!.v).toBe(before!.v + 1);
  });
});

describe("starting an app", () => {
  it("changes its state, bumps its processes' version and answers the app in one batch, reading nothing first", async () => {
    const app = await appWithDroplet(space.guid);
    const stopped = await getApp(db(), app.guid);
    const [before] = await db().select({ version: schema.processes.version }).from(schema.processes).where(eq(schema.processes.appGuid, app.guid));
    const { db: counted, tally } = countingDb();
    const after = await changeAppState(counted, stopped!, "start", BOOTSTRAP_ADMIN);
    expect(tally).toMatchObject({ roundTrips: 1 });
    expect(after).toMatchObject({ guid: app.guid, state: "STARTED" });
    const [bumped] = await db().select({ version: schema.processes.version }).from(schema.processes).where(eq(schema.processes.appGuid, app.guid));
    expect(bumped!.version).not.toBe(before!.version);
    // Started again: no new version (CC: only a stopped app's start replaces its instances).
    await changeAppState(db(), after!, "start", BOOTSTRAP_ADMIN);
    const [again] = await db().select({ version: schema.processes.version }).from(schema.processes).where(eq(schema.processes.appGuid, app.guid));
    expect(again!.version).toBe(bumped!.version);
  });
});

describe("a start's quota check", () => {
  it("reads the app's processes, its space, the quotas there and what started apps use in one batch", async () => {
    const app = await appWithDroplet(space.guid);
    const row = (await getApp(db(), app.guid))!;
    const { db: counted, tally } = countingDb();
    // CC's default organization quota limits total memory: the usage it is checked against comes in the same batch.
    await checkAppStartQuotas(counted, row);
    expect(tally.roundTrips).toBe(1);
    // Given the rows a caller read in its own batch (the start route, with the flag), none.
    const rows = await db().batch(appStartQuotaReads(db(), row));
    const { db: given, tally: none } = countingDb();
    await checkAppStartQuotas(given, row, rows);
    expect(none.roundTrips).toBe(0);
  });
});

describe("a pass's stops", () => {
  it("stop a cell's instances in one statement, not one per instance, with its version bump in the same batch", async () => {
    const { cell, reports } = await runningOnOwnCell(6);
    const [before] = await db().select({ v: schema.cells.desiredVersion }).from(schema.cells).where(eq(schema.cells.guid, cell.guid));
    const since = Date.now();
    const writes: WriteOp[] = reports.map((r) => ({ op: "stopping", instance_guid: r.instance_guid, since, cells: [cell.guid], routes: true }));
    const { db: counted, tally, sql } = countingDb();
    const moved = await commitWriteSet(counted, writes);
    expect(tally.roundTrips).toBe(1);
    expect(sql.filter((q) => /^update "instances"/i.test(q))).toHaveLength(1);
    expect(moved).toEqual(expect.arrayContaining([{ kind: "cell", cellGuid: cell.guid, version: await readCellSetVersion(db(), cell.guid) }, { kind: "routes_table", version: expect.any(Number) }]));
    // (Other tests' instances may have moved onto this cell: only the stopped ones are looked at.)
    const rows = await db().select({ state: schema.instances.state, since: schema.instances.since }).from(schema.instances)
      .where(inArray(schema.instances.instanceGuid, reports.map((r) => r.instance_guid)));
    expect(rows).toHaveLength(6);
    expect(rows.every((r) => r.state === "STOPPING" && r.since === since)).toBe(true);
    const [after] = await db().select({ v: schema.cells.desiredVersion }).from(schema.cells).where(eq(schema.cells.guid, cell.guid));
    expect(after!.v).toBe(before!.v + 1);
  });
});

describe("a pass's fleet-wide reads", () => {
  it("sum each cell's load from the instances_cell_load index, parsing no spec, and find due instances by state", async () => {
    const plan = async (query: { toSQL(): { sql: string; params: unknown[] } }) => {
      const { sql, params } = query.toSQL();
      const rows = await env.DB.prepare(`explain query plan ${sql}`).bind(...params).all<{ detail: string }>();
      return rows.results.map((r) => r.detail).join("; ");
    };
    const load = cellLoadQuery(db());
    // A covering index: the table itself (and so each spec) is not read.
    expect(await plan(load)).toMatch(/USING COVERING INDEX instances_cell_load/);
    const due = oldestClaimQuery(db());
    expect(await plan(due)).toMatch(/USING INDEX instances_state_since/);
  });
});
