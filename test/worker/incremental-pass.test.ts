/**
 * Incremental passes: a pass reads and writes only what its wakes named (apps,
 * and the apps on named cells), plus whatever is due; a full pass, the
 * backstop, reads everything. And requests only wake: the scheduler's alarm
 * runs the pass after the response.
 */
import { beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { eq, inArray } from "drizzle-orm";
import * as schema from "../../worker/db/schema";
import { ADMIN, api, createSpace, db } from "./support";
import { setDocker } from "./app-fixtures";
import { appWithDroplet, emptyFleet, enroll, heartbeat, instancesOfApp, onlyActiveCell, pass, report } from "./cell-fixtures";

let space: { guid: string };

beforeAll(async () => {
  space = await createSpace();
  await setDocker(true);
});

/** Each test starts from no running apps and no live cells (storage is shared within the file). */
beforeEach(async () => {
  await emptyFleet();
});

/** Two started apps with one placed instance each, set up straight in D1 (no wakes) and placed by a full pass. */
async function twoPlacedApps() {
  const cell = await enroll("cell");
  await onlyActiveCell(cell.guid);
  const a = await appWithDroplet(space.guid, { instances: 1 });
  const b = await appWithDroplet(space.guid, { instances: 1 });
  await db().update(schema.apps).set({ state: "STARTED" }).where(inArray(schema.apps.guid, [a.guid, b.guid]));
  await pass();
  expect((await instancesOfApp(a.guid)).map((r) => r.state)).toEqual(["CLAIMED"]);
  expect((await instancesOfApp(b.guid)).map((r) => r.state)).toEqual(["CLAIMED"]);
  return { cell, a, b };
}

const scaleInD1 = (appGuids: string[], instances: number) =>
  db().update(schema.processes).set({ instances }).where(inArray(schema.processes.appGuid, appGuids));

describe("incremental passes", () => {
  it("a pass woken for one app reads and changes only that app's rows", async () => {
    const { a, b } = await twoPlacedApps();
    const before = await instancesOfApp(b.guid);
    // Both apps now want two instances, but only a's change woke the scheduler.
    await scaleInD1([a.guid, b.guid], 2);
    const report = await pass({ apps: [a.guid] });
    expect(report.full).toBe(false);
    expect(report.read).toEqual({ instances: 1, processes: 1 });
    expect(report.placed).toHaveLength(1);
    expect((await instancesOfApp(a.guid)).map((r) => [r.index, r.state])).toEqual([[0, "CLAIMED"], [1, "CLAIMED"]]);
    expect(await instancesOfApp(b.guid)).toEqual(before);
    // The periodic full pass is the backstop: it finds b's missing index.
    const full = await pass();
    expect(full.full).toBe(true);
    expect((await instancesOfApp(b.guid)).map((r) => r.index)).toEqual([0, 1]);
  });

  it("a pass woken for a cell reads the apps with instances on it, and no others", async () => {
    const { cell, a, b } = await twoPlacedApps();
    const other = await appWithDroplet(space.guid, { instances: 1 });
    await db().update(schema.apps).set({ state: "STARTED" }).where(eq(schema.apps.guid, other.guid));
    // A drain names the cell: everything on it is evacuated, nothing else is looked at.
    const spare = await enroll("cell", { zone: "z2" });
    await db().update(schema.cells).set({ state: "DRAINING" }).where(eq(schema.cells.guid, cell.guid));
    const report = await pass({ cells: [cell.guid] });
    expect(report.full).toBe(false);
    expect(report.read.processes).toBe(2);
    expect(report.replaced.sort()).toEqual([(await instancesOfApp(a.guid))[0]!.instanceGuid, (await instancesOfApp(b.guid))[0]!.instanceGuid].sort());
    for (const app of [a, b]) expect((await instancesOfApp(app.guid)).some((r) => r.cellGuid === spare.guid)).toBe(true);
    expect(await instancesOfApp(other.guid)).toEqual([]);
    await pass();
    expect(await instancesOfApp(other.guid)).toHaveLength(1);
  });

  it("a pass with nothing named still acts on what came due: a crash, anywhere in the fleet", async () => {
    const { cell, a, b } = await twoPlacedApps();
    const [crashing] = await instancesOfApp(b.guid);
    await db().update(schema.instances).set({ state: "CRASHED", crashCount: 1, since: Date.now() - 1000 }).where(eq(schema.instances.instanceGuid, crashing!.instanceGuid));
    const report = await pass({});
    expect(report.full).toBe(false);
    expect(report.replaced).toEqual([crashing!.instanceGuid]);
    expect(report.read.processes).toBe(1);
    expect((await instancesOfApp(a.guid)).map((r) => r.cellGuid)).toEqual([cell.guid]);
  });
});

describe("requests only wake the scheduler", () => {
  it("a start answers before any pass, and the scheduler's alarm places the instances", async () => {
    const cell = await enroll("cell");
    await onlyActiveCell(cell.guid);
    const app = await appWithDroplet(space.guid, { instances: 2 });
    expect((await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: ADMIN })).status).toBe(200);
    // No pass is run here: the wake set the alarm, and the alarm runs the pass.
    await vi.waitFor(async () => expect((await instancesOfApp(app.guid)).map((r) => r.state)).toEqual(["CLAIMED", "CLAIMED"]), { timeout: 10_000, interval: 50 });
  });

  it("a crash report answers at once; the alarm restarts the instance", async () => {
    const cell = await enroll("cell");
    await onlyActiveCell(cell.guid);
    const app = await appWithDroplet(space.guid, { instances: 1 });
    await db().update(schema.apps).set({ state: "STARTED" }).where(eq(schema.apps.guid, app.guid));
    await pass();
    const [row] = await instancesOfApp(app.guid);
    const res = await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: heartbeat([report(row!.instanceGuid, "CRASHED", { exit: { status: 2, signal: null, oom: false } })]) });
    expect(res.status).toBe(200);
    await vi.waitFor(async () => {
      const rows = await instancesOfApp(app.guid);
      expect(rows.find((r) => r.instanceGuid !== row!.instanceGuid)).toMatchObject({ state: "CLAIMED", crashCount: 1 });
    }, { timeout: 10_000, interval: 50 });
  });
});
