/**
 * /v3/deployments inside workerd with a real D1 and the real scheduler: CC's
 * shapes and errors, a roll driven to the end by cell reports (an old instance
 * stops only after a new one RUNS), a crashing roll that keeps every old
 * instance and is rolled back by cancel, superseding, and what another
 * space's developer cannot do to a deployment.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { and, eq } from "drizzle-orm";
import * as schema from "../../worker/db/schema";
import { ADMIN, addDeveloper, api, createSpace, createUser, db } from "./support";
import { setDocker } from "./app-fixtures";
import { appWithDroplet, emptyFleet, enroll, heartbeat, instancesOfApp, pass, report } from "./cell-fixtures";

let space: { guid: string };
let cell: { guid: string; credential: string };

beforeEach(async () => {
  space ??= await createSpace();
  await setDocker(true);
  await emptyFleet();
  cell = await enroll("cell");
});

/** Reports instances' states from the cell, then runs the pass their wake asked for. */
async function cellReports(states: [string, "RUNNING" | "CRASHED"][]) {
  if (states.length === 0) return;
  const res = await api("POST", `/v3/cells/${cell.guid}/instances`, {
    token: cell.credential,
    body: { protocol: 1, instances: states.map(([g, s]) => report(g, s, s === "CRASHED" ? { exit: { status: 1, signal: null, oom: false } } : {})) },
  });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  await pass();
}

/** Every placed (CLAIMED) instance of the app reports RUNNING. */
const runClaimed = async (appGuid: string) =>
  cellReports((await instancesOfApp(appGuid)).filter((r) => r.state === "CLAIMED").map((r) => [r.instanceGuid, "RUNNING"]));

/** A started app with `instances` RUNNING instances and a second STAGED droplet to deploy. */
async function runningApp(instances: number) {
  const app = await appWithDroplet(space.guid, { instances });
  const [first] = await db().select().from(schema.apps).where(eq(schema.apps.guid, app.guid));
  expect((await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: ADMIN })).status).toBe(200);
  await pass();
  await runClaimed(app.guid);
  const droplet = crypto.randomUUID();
  const [old] = await db().select().from(schema.droplets).where(eq(schema.droplets.guid, first!.currentDropletGuid!));
  await db().insert(schema.droplets).values({ ...old!, guid: droplet, createdAt: undefined, updatedAt: undefined });
  return { ...app, oldDroplet: first!.currentDropletGuid!, newDroplet: droplet };
}

const webProcesses = async (appGuid: string) =>
  db().select().from(schema.processes).where(and(eq(schema.processes.appGuid, appGuid), eq(schema.processes.type, "web")));

const byProcess = async (appGuid: string) => {
  const out: Record<string, string[]> = {};
  for (const r of await instancesOfApp(appGuid)) (out[r.processGuid] ??= []).push(r.state);
  return out;
};

const deploy = (appGuid: string, extra: Record<string, unknown> = {}, token = ADMIN) =>
  api("POST", "/v3/deployments", { token, body: { relationships: { app: { data: { guid: appGuid } } }, ...extra } });

describe("POST /v3/deployments and the roll", () => {
  it("answers CC's shape, then rolls one instance at a time: an old instance stops only after a new one RUNS, to DEPLOYED", async () => {
    const app = await runningApp(2);
    const created = await deploy(app.guid, { droplet: { guid: app.newDroplet } });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const d = created.json;
    expect(d).toMatchObject({
      status: { value: "ACTIVE", reason: "DEPLOYING", details: { last_successful_healthcheck: null, last_status_change: expect.any(String) } },
      strategy: "rolling", options: { max_in_flight: 1 }, droplet: { guid: app.newDroplet }, previous_droplet: { guid: app.oldDroplet },
      revision: null, relationships: { app: { data: { guid: app.guid } } }, metadata: { labels: {}, annotations: {} },
      links: { self: { href: expect.stringContaining(`/v3/deployments/${d.guid}`) }, cancel: { method: "POST" } },
    });
    expect(d.new_processes).toEqual([{ guid: expect.any(String), type: "web" }]);
    const newGuid = d.new_processes[0].guid as string;
    expect(newGuid).not.toBe(app.guid);
    // The app points at the new droplet; the web process the API shows is the new one; both are listed.
    expect((await api("GET", `/v3/apps/${app.guid}/droplets/current`, { token: ADMIN })).json.guid).toBe(app.newDroplet);
    expect((await api("GET", `/v3/apps/${app.guid}/processes/web`, { token: ADMIN })).json.guid).toBe(newGuid);
    expect((await api("GET", `/v3/apps/${app.guid}/processes`, { token: ADMIN })).json.resources.map((p: { guid: string }) => p.guid)).toEqual([app.guid, newGuid]);

    await pass();
    expect(await byProcess(app.guid)).toEqual({ [app.guid]: ["RUNNING", "RUNNING"], [newGuid]: ["CLAIMED"] });
    const oldInstances = (await instancesOfApp(app.guid)).filter((r) => r.processGuid === app.guid).map((r) => r.instanceGuid);
    // Scaling the web process mid-roll is CC's 422.
    const scale = await api("POST", `/v3/apps/${app.guid}/processes/web/actions/scale`, { token: ADMIN, body: { instances: 5 } });
    expect(scale.status).toBe(422);
    expect(scale.json.errors[0].detail).toBe("Cannot scale this process while a deployment is in flight.");

    // The first new instance runs: the routers list both processes, one old instance stops, the second new one is placed.
    await runClaimed(app.guid);
    expect(await byProcess(app.guid)).toEqual({ [app.guid]: ["RUNNING", "STOPPING"], [newGuid]: ["RUNNING", "CLAIMED"] });
    const mid = (await api("GET", `/v3/deployments/${d.guid}`, { token: ADMIN })).json;
    expect(mid.status).toMatchObject({ value: "ACTIVE", reason: "DEPLOYING", details: { last_successful_healthcheck: expect.any(String) } });

    await runClaimed(app.guid);
    const done = (await api("GET", `/v3/deployments/${d.guid}`, { token: ADMIN })).json;
    expect(done.status).toMatchObject({ value: "FINALIZED", reason: "DEPLOYED" });
    expect(done.links.cancel).toBeUndefined();
    expect((await webProcesses(app.guid)).map((p) => [p.guid, p.instances])).toEqual([[newGuid, 2]]);
    expect(await byProcess(app.guid)).toEqual({ [newGuid]: ["RUNNING", "RUNNING"] });
    // The cell still reports the old process's instances it has not stopped yet: the heartbeat lands.
    const reports = [...oldInstances, ...(await instancesOfApp(app.guid)).map((r) => r.instanceGuid)].map((g) => report(g, "RUNNING"));
    const beat = await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: heartbeat(reports) });
    expect(beat.status, JSON.stringify(beat.json)).toBe(200);

    const events = (await api("GET", `/v3/audit_events?target_guids=${app.guid}`, { token: ADMIN })).json.resources;
    expect(events.map((e: { type: string }) => e.type)).toContain("audit.app.deployment.create");
    // Canceling a finished deployment is CC's 422.
    const late = await api("POST", `/v3/deployments/${d.guid}/actions/cancel`, { token: ADMIN });
    expect(late.status).toBe(422);
    expect(late.json.errors[0]).toMatchObject({ title: "CF-UnprocessableEntity", detail: "Cannot cancel a deployment with status: FINALIZED and reason: DEPLOYED" });
  });

  it("a new instance that crashes drops no old instance; cancel rolls back to the old droplet at full scale", async () => {
    const app = await runningApp(2);
    const d = (await deploy(app.guid, { droplet: { guid: app.newDroplet } })).json;
    const newGuid = d.new_processes[0].guid as string;
    await pass();
    const [fresh] = (await instancesOfApp(app.guid)).filter((r) => r.processGuid === newGuid);
    await cellReports([[fresh!.instanceGuid, "CRASHED"]]);
    await pass();
    expect((await byProcess(app.guid))[app.guid]).toEqual(["RUNNING", "RUNNING"]);
    expect((await webProcesses(app.guid)).find((p) => p.guid === app.guid)!.instances).toBe(2);

    const cancel = await api("POST", `/v3/deployments/${d.guid}/actions/cancel`, { token: ADMIN });
    expect(cancel.status).toBe(200);
    expect((await api("GET", `/v3/deployments/${d.guid}`, { token: ADMIN })).json.status).toMatchObject({ value: "ACTIVE", reason: "CANCELING" });
    expect((await api("GET", `/v3/apps/${app.guid}/droplets/current`, { token: ADMIN })).json.guid).toBe(app.oldDroplet);
    await pass();
    expect((await api("GET", `/v3/deployments/${d.guid}`, { token: ADMIN })).json.status).toMatchObject({ value: "FINALIZED", reason: "CANCELED" });
    expect((await webProcesses(app.guid)).map((p) => [p.guid, p.instances])).toEqual([[app.guid, 2]]);
    expect(await byProcess(app.guid)).toEqual({ [app.guid]: ["RUNNING", "RUNNING"] });
    const events = (await api("GET", `/v3/audit_events?target_guids=${app.guid}`, { token: ADMIN })).json.resources;
    expect(events.find((e: { type: string }) => e.type === "audit.app.deployment.cancel").data).toMatchObject({ deployment_guid: d.guid });
  });

  it("a second deployment supersedes the first (FINALIZED/SUPERSEDED) and rolls to the first one's original count", async () => {
    const app = await runningApp(2);
    const first = (await deploy(app.guid, { droplet: { guid: app.newDroplet } })).json;
    await pass();
    const second = await deploy(app.guid);
    expect(second.status).toBe(201);
    expect((await api("GET", `/v3/deployments/${first.guid}`, { token: ADMIN })).json.status).toMatchObject({ value: "FINALIZED", reason: "SUPERSEDED" });
    const active = await api("GET", `/v3/deployments?app_guids=${app.guid}&status_values=ACTIVE&order_by=-created_at&per_page=1&page=1`, { token: ADMIN });
    expect(active.json.resources.map((r: { guid: string }) => r.guid)).toEqual([second.json.guid]);
    expect(active.json.pagination.total_results).toBe(1);
    for (let i = 0; i < 6; i++) await runClaimed(app.guid);
    expect((await api("GET", `/v3/deployments/${second.json.guid}`, { token: ADMIN })).json.status).toMatchObject({ value: "FINALIZED", reason: "DEPLOYED" });
    expect((await webProcesses(app.guid)).map((p) => [p.guid, p.instances])).toEqual([[second.json.new_processes[0].guid, 2]]);
  });

  it("a deployment of a stopped app starts it and is DEPLOYED at once, with no new process", async () => {
    const app = await appWithDroplet(space.guid, { instances: 1 });
    const res = await deploy(app.guid, { strategy: "rolling" });
    expect(res.status).toBe(201);
    expect(res.json.status).toMatchObject({ value: "FINALIZED", reason: "DEPLOYED" });
    expect(res.json.new_processes).toEqual([]);
    expect((await api("GET", `/v3/apps/${app.guid}`, { token: ADMIN })).json.state).toBe("STARTED");
  });
});

describe("errors in CC's words", () => {
  it("refuses a bad strategy, unknown options, a revision, a missing app and a foreign droplet, writing nothing", async () => {
    const app = await runningApp(1);
    const cases: [Record<string, unknown>, string][] = [
      [{ strategy: "blue-green" }, "Strategy 'blue-green' is not a supported deployment strategy"],
      [{ options: { max_in_flight: 0 } }, "Max in flight must be an integer greater than 0"],
      [{ options: { canary: {} } }, "Options has unsupported key(s): canary"],
      [{ revision: { guid: "r1" } }, "Cannot create deployment from a revision for an app without revisions enabled"],
      [{ droplet: { guid: crypto.randomUUID() } }, "Unable to assign current droplet. Ensure the droplet exists and belongs to this app."],
    ];
    for (const [extra, detail] of cases) {
      const res = await deploy(app.guid, extra);
      expect(res.status, JSON.stringify(extra)).toBe(422);
      expect(res.json.errors[0].detail).toBe(detail);
    }
    const missing = await deploy(crypto.randomUUID());
    expect(missing.json.errors[0].detail).toBe("Unable to use app. Ensure that the app exists and you have access to it.");
    const unknown = await api("POST", "/v3/deployments", { token: ADMIN, body: { relationships: { app: { data: { guid: app.guid } } }, colour: "red" } });
    expect(unknown.status).toBe(422);
    expect((await db().select().from(schema.deployments).where(eq(schema.deployments.appGuid, app.guid)))).toEqual([]);
    expect(await webProcesses(app.guid)).toHaveLength(1);
  });

  it("an unknown deployment is 404; continue of a rolling deployment is CC's 422; diego_docker off is 403", async () => {
    expect((await api("GET", `/v3/deployments/${crypto.randomUUID()}`, { token: ADMIN })).json.errors[0]).toMatchObject({ title: "CF-ResourceNotFound", detail: "Deployment not found" });
    const app = await runningApp(1);
    const d = (await deploy(app.guid)).json;
    const cont = await api("POST", `/v3/deployments/${d.guid}/actions/continue`, { token: ADMIN });
    expect(cont.json.errors[0].detail).toBe("Cannot continue a deployment with status: ACTIVE and reason: DEPLOYING");
    await setDocker(false);
    expect((await deploy(app.guid)).json.errors[0].title).toBe("CF-FeatureDisabled");
  });

  it("a developer of another space cannot deploy, see or cancel the app's deployments", async () => {
    const app = await runningApp(1);
    const d = (await deploy(app.guid)).json;
    const other = await createSpace();
    const intruder = await createUser();
    await addDeveloper(intruder.guid, other.guid);
    const deployed = await deploy(app.guid, {}, intruder.token);
    expect(deployed.status).toBe(422);
    expect(deployed.json.errors[0].detail).toBe("Unable to use app. Ensure that the app exists and you have access to it.");
    expect((await api("GET", `/v3/deployments/${d.guid}`, { token: intruder.token })).status).toBe(404);
    expect((await api("POST", `/v3/deployments/${d.guid}/actions/cancel`, { token: intruder.token })).status).toBe(404);
    expect((await api("GET", `/v3/deployments?app_guids=${app.guid}`, { token: intruder.token })).json.resources).toEqual([]);
    expect((await api("GET", `/v3/deployments/${d.guid}`, { token: ADMIN })).json.status.reason).toBe("DEPLOYING");
  });
});
