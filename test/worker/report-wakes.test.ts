/**
 * Which instance reports wake the scheduler. An instance turning RUNNING wakes
 * a pass only when a pass waits for it: a SUSPECT copy of its index to retire,
 * a duplicate to settle, a rolling deployment's step. A steady app's instances
 * coming up wake nothing (at 10,000 instances every one of them woke a pass
 * that read its app and found nothing to do), yet routers still hear of them.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import * as schema from "../../worker/db/schema";
import { recordInstanceReports } from "../../worker/scheduling/reports";
import { DEFAULT_CONVERGENCE_CONFIG } from "../../shared/convergence/config";
import { ADMIN, api, createSpace, db } from "./support";
import { setDocker } from "./app-fixtures";
import { appWithDroplet, credentialOf, emptyFleet, enroll, instancesOfApp, onlyActiveCell, pass, report } from "./cell-fixtures";

let space: { guid: string };
let cell: { guid: string; credential: string; name: string };

beforeEach(async () => {
  space ??= await createSpace();
  await setDocker(true);
  await emptyFleet();
  cell = await enroll("cell");
  await onlyActiveCell(cell.guid);
});

const running = async (guids: string[]) =>
  (await recordInstanceReports(db(), await credentialOf(cell), guids.map((g) => report(g, "RUNNING")), Date.now(), DEFAULT_CONVERGENCE_CONFIG.restart))!;

/** A started app of `instances`, placed on the cell by a pass, not yet reported. */
async function placedApp(instances: number) {
  const app = await appWithDroplet(space.guid, { instances });
  expect((await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: ADMIN })).status).toBe(200);
  await pass();
  const rows = await instancesOfApp(app.guid);
  expect(rows.map((r) => r.state)).toEqual(rows.map(() => "CLAIMED"));
  return { app, rows };
}

describe("an instance turning RUNNING", () => {
  it("of a steady app wakes no pass, and still moves the route table for routers", async () => {
    const { rows } = await placedApp(3);
    const outcome = await running(rows.map((r) => r.instanceGuid));
    expect(outcome.wake).toBeUndefined();
    expect(outcome.sources).toContainEqual({ kind: "routes_table", version: expect.any(Number) });
    expect((await instancesOfApp(rows[0]!.appGuid)).map((r) => r.state)).toEqual(["RUNNING", "RUNNING", "RUNNING"]);
  });

  it("that replaces a SUSPECT copy of its index wakes its app's pass, which retires the copy", async () => {
    const { app, rows } = await placedApp(1);
    const [fresh] = rows;
    // The copy on a cell that fell silent, still serving until its replacement runs.
    const lost = await enroll("cell");
    await db().insert(schema.instances).values({
      instanceGuid: crypto.randomUUID(), processGuid: fresh!.processGuid, appGuid: app.guid, index: 0, processVersion: fresh!.processVersion,
      spec: fresh!.spec, cellGuid: lost.guid, state: "RUNNING", presence: "SUSPECT", since: Date.now() - 60_000, hostPort: 61002,
    });
    await db().update(schema.cells).set({ state: "LOST" }).where(eq(schema.cells.guid, lost.guid));
    const outcome = await running([fresh!.instanceGuid]);
    expect(outcome.wake).toEqual({ apps: [app.guid] });
    await pass(outcome.wake);
    expect((await instancesOfApp(app.guid)).map((r) => [r.instanceGuid === fresh!.instanceGuid, r.state])).toEqual(
      expect.arrayContaining([[true, "RUNNING"], [false, "STOPPING"]]),
    );
  });

  it("of an app with a rolling deployment in flight wakes its app's pass, which takes the roll's next step", async () => {
    const { app, rows } = await placedApp(1);
    expect((await running(rows.map((r) => r.instanceGuid))).wake).toBeUndefined();
    expect((await api("POST", "/v3/deployments", { token: ADMIN, body: { relationships: { app: { data: { guid: app.guid } } } } })).status).toBe(201);
    await pass();
    const fresh = (await instancesOfApp(app.guid)).filter((r) => r.state === "CLAIMED");
    expect(fresh).toHaveLength(1);
    const outcome = await running([fresh[0]!.instanceGuid]);
    expect(outcome.wake).toEqual({ apps: [app.guid] });
    await pass(outcome.wake);
    // The roll's step: the old instance stops now that the new one runs.
    expect((await instancesOfApp(app.guid)).find((r) => r.instanceGuid === rows[0]!.instanceGuid)?.state ?? "gone").toMatch(/^(STOPPING|gone)$/);
  });
});
