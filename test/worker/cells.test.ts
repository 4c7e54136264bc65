import { beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { env } from "cloudflare:workers";
import * as schema from "../../worker/db/schema";
import { DEFAULT_ORGANIZATION_GUID } from "../../worker/db/organizations";
import { versionBumps } from "../../worker/scheduling/versions";
import { notifyChannels } from "../../worker/scheduling/long-poll";
import { listInstancesOfProcess } from "../../worker/db/instances";
import { ADMIN, api, createSpace, createUser, db, unique } from "./support";
import { setDocker } from "./app-fixtures";
import { IMAGE, appWithDroplet, enroll, onlyActiveCell, heartbeat, instancesOfApp, pass, presence, report } from "./cell-fixtures";

let space: { guid: string; name: string };

beforeAll(async () => {
  space = await createSpace();
  await setDocker(true);
});

describe("enrollment", () => {
  it("gives admins a one-time token and refuses everyone else", async () => {
    const dev = await createUser();
    expect((await api("POST", "/v3/cells/enrollment_tokens", { body: { kind: "cell" } })).status).toBe(401);
    expect((await api("POST", "/v3/cells/enrollment_tokens", { token: dev.token, body: { kind: "cell" } })).status).toBe(403);
    const bad = await api("POST", "/v3/cells/enrollment_tokens", { token: ADMIN, body: { kind: "toaster" } });
    expect(bad.status).toBe(422);
    expect(bad.json.errors[0].detail).toMatch(/^kind: /);
    const ok = await api("POST", "/v3/cells/enrollment_tokens", { token: ADMIN, body: { kind: "router" } });
    expect(ok.status).toBe(201);
    expect(ok.json).toMatchObject({ kind: "router", token: expect.stringMatching(/^be_/) });
  });

  it("registers a cell once per token and hands it a working credential", async () => {
    const token = (await api("POST", "/v3/cells/enrollment_tokens", { token: ADMIN, body: { kind: "cell" } })).json.token;
    const body = { protocol: 1, enrollment_token: token, name: "cell-a", zone: "z9", address: "10.9.0.1", capacity: { memory_mb: 2048, disk_mb: 4096, containers: 10 } };
    const missing = await api("POST", "/v3/cells/register", { body: { ...body, zone: undefined } });
    expect(missing.status).toBe(422);
    expect(missing.json.errors[0].detail).toContain("zone");
    const res = await api("POST", "/v3/cells/register", { body });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ protocol: 1, kind: "cell", name: "cell-a", credential: expect.stringMatching(/^bc_/) });
    expect((await api("POST", "/v3/cells/register", { body })).status).toBe(401);
    const set = await api("GET", `/v3/cells/${res.json.guid}/desired`, { token: res.json.credential });
    expect(set.status).toBe(200);
    expect(set.json).toMatchObject({ protocol: 1, instances: [], staging_tasks: [], registry_access: { version: 0 } });
  });

  it("refuses an unknown enrollment token and a wrong protocol version", async () => {
    const res = await api("POST", "/v3/cells/register", { body: { protocol: 1, enrollment_token: "be_nope", name: "x" } });
    expect(res.status).toBe(401);
    expect(res.json.errors[0].title).toBe("CF-InvalidAuthToken");
    const v2 = await api("POST", "/v3/cells/register", { body: { protocol: 2, enrollment_token: "be_nope", name: "x" } });
    expect(v2.status).toBe(422);
    expect(v2.json.errors[0].detail).toContain("protocol");
  });

  it("registers routers, whose credential reads the route table", async () => {
    const router = await enroll("router");
    const table = await api("GET", "/v3/routes/table", { token: router.credential });
    expect(table.status).toBe(200);
    expect(table.json).toMatchObject({ version: expect.any(Number), routes: expect.any(Array) });
  });
});

describe("GET /v3/cells and drain", () => {
  it("lists cells for admins only, with capacity, free, heartbeat and state", async () => {
    const cell = await enroll("cell");
    await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: heartbeat([], { free: { memory_mb: 100, disk_mb: 200, containers: 3 } }) });
    const list = await api("GET", "/v3/cells?per_page=5000", { token: ADMIN });
    expect(list.status).toBe(200);
    const mine = list.json.resources.find((c: { guid: string }) => c.guid === cell.guid);
    expect(mine).toMatchObject({ zone: "z1", address: "10.1.0.1", state: "ACTIVE", capacity: { memory_mb: 4096 }, free: { memory_mb: 100, containers: 3 } });
    expect(mine.last_heartbeat_at).toMatch(/Z$/);
    expect((await api("GET", "/v3/cells", { token: cell.credential })).status).toBe(403);
    expect((await api("GET", "/v3/cells", { token: (await createUser()).token })).status).toBe(403);
  });

  it("drains a cell (admin only) and 404s an unknown one", async () => {
    const cell = await enroll("cell");
    expect((await api("POST", `/v3/cells/${cell.guid}/actions/drain`, { token: cell.credential })).status).toBe(403);
    const res = await api("POST", `/v3/cells/${cell.guid}/actions/drain`, { token: ADMIN });
    expect(res.status).toBe(202);
    expect(res.json.state).toBe("DRAINING");
    expect((await api("POST", `/v3/cells/${crypto.randomUUID()}/actions/drain`, { token: ADMIN })).status).toBe(404);
  });
});

describe("DELETE /v3/cells/:id", () => {
  it("refuses a cell that still heartbeats, and anyone but an admin", async () => {
    const cell = await enroll("cell");
    expect((await api("DELETE", `/v3/cells/${cell.guid}`, { token: cell.credential })).status).toBe(403);
    expect((await api("DELETE", `/v3/cells/${cell.guid}`, { token: (await createUser()).token })).status).toBe(403);
    const live = await api("DELETE", `/v3/cells/${cell.guid}`, { token: ADMIN });
    expect(live.status).toBe(422);
    expect(live.json.errors[0].detail).toBe(`Cell ${cell.name} (${cell.guid}) is still heartbeating: drain it, stop its agent, then delete it`);
    expect((await api("GET", `/v3/cells/${cell.guid}`, { token: ADMIN })).status).toBe(200);
    expect((await api("DELETE", `/v3/cells/${crypto.randomUUID()}`, { token: ADMIN })).status).toBe(404);
  });

  it("forgets a gone cell: its row, its credential and the instances recorded on it, routes included", async () => {
    const cell = await enroll("cell");
    await onlyActiveCell(cell.guid);
    const app = await appWithDroplet(space.guid);
    await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: ADMIN });
    await pass(); // the request only woke the scheduler
    const [instance] = await instancesOfApp(app.guid);
    await api("POST", `/v3/cells/${cell.guid}/instances`, { token: cell.credential, body: { protocol: 1, instances: [report(instance!.instanceGuid, "RUNNING")] } });
    const tableBefore = (await api("GET", "/v3/routes/table", { token: ADMIN })).json.version;
    await db().update(schema.cells).set({ lastHeartbeatAt: Date.now() - 60_000 }).where(eq(schema.cells.guid, cell.guid));
    expect((await api("DELETE", `/v3/cells/${cell.guid}`, { token: ADMIN })).status).toBe(204);
    expect((await api("GET", `/v3/cells/${cell.guid}`, { token: ADMIN })).status).toBe(404);
    // The agent, if it ever comes back, must enroll again.
    expect((await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: heartbeat([]) })).status).toBe(401);
    expect((await instancesOfApp(app.guid)).filter((r) => r.instanceGuid === instance!.instanceGuid)).toEqual([]);
    expect((await api("GET", "/v3/routes/table", { token: ADMIN })).json.version).toBeGreaterThan(tableBefore);
    // Not to be placed on the next tests' cells.
    await api("POST", `/v3/apps/${app.guid}/actions/stop`, { token: ADMIN });
  });
});

describe("GET /v3/cells/:id/desired (long-poll)", () => {
  it("lets a cell read only its own set", async () => {
    const a = await enroll("cell");
    const b = await enroll("cell");
    expect((await api("GET", `/v3/cells/${b.guid}/desired`, { token: a.credential })).status).toBe(403);
    expect((await api("GET", `/v3/cells/${a.guid}/desired`, { token: ADMIN })).status).toBe(403);
    expect((await api("GET", `/v3/cells/${a.guid}/desired`)).status).toBe(401);
    expect((await api("GET", `/v3/cells/${a.guid}/desired?after=-1`, { token: a.credential })).status).toBe(422);
  });

  it("answers 204 with nothing after the hold when the set did not change", async () => {
    const cell = await enroll("cell");
    const first = await api("GET", `/v3/cells/${cell.guid}/desired`, { token: cell.credential });
    const started = Date.now();
    const res = await api("GET", `/v3/cells/${cell.guid}/desired?after=${first.json.version}`, { token: cell.credential });
    expect(res.status).toBe(204);
    expect(res.json).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it("answers the moment the set changes, with the whole set", async () => {
    const cell = await enroll("cell");
    const app = await appWithDroplet(space.guid, { instances: 2 });
    await onlyActiveCell(cell.guid);
    expect((await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: ADMIN })).status).toBe(200);
    await pass(); // the request only woke the scheduler
    const first = await api("GET", `/v3/cells/${cell.guid}/desired`, { token: cell.credential });
    const poll = api("GET", `/v3/cells/${cell.guid}/desired?after=${first.json.version}`, { token: cell.credential });
    // What a scheduler pass does after writing: move the version, notify the channel.
    await db().batch(versionBumps(db(), { cells: [cell.guid] }).statements as [never]);
    await notifyChannels(env, [{ kind: "cell", cellGuid: cell.guid }]);
    const res = await poll;
    // Answered by the change, not by the end of the 300 ms hold (which would be a 204).
    expect(res.status).toBe(200);
    expect(res.json.version).toBe(first.json.version + 1);
    expect(res.json.instances.map((i: { index: number }) => i.index).sort()).toEqual([0, 1]);
    const spec = res.json.instances[0];
    expect(spec).toMatchObject({
      app_guid: app.guid, command: { kind: "exec", argv: ["/bin/httpd", "-f", "-p", "8000"] }, user: "nobody", workdir: "/www", port: 8000,
      memory_mb: 256, health_check: { type: "port", timeout_s: 60 },
    });
    expect(spec.env).toMatchObject({ PATH: "/bin", FROM_IMAGE: "1", APP_VAR: "x", PORT: "8000", INSTANCE_GUID: spec.instance_guid });
    expect(spec).not.toHaveProperty("package_guid");
  });

  it("gives each instance CF's runtime env: VCAP_APPLICATION with the mapped routes, space and limits, VCAP_SERVICES, MEMORY_LIMIT, CF_INSTANCE_*", async () => {
    const cell = await enroll("cell");
    const app = await appWithDroplet(space.guid, { instances: 2 });
    const hosts = [unique("one"), unique("two")];
    for (const host of hosts) {
      const route = await api("POST", "/v3/routes", { token: ADMIN, body: { host, relationships: { space: { data: { guid: space.guid } } } } });
      await api("POST", `/v3/routes/${route.json.guid}/destinations`, { token: ADMIN, body: { destinations: [{ app: { guid: app.guid } }] } });
    }
    await onlyActiveCell(cell.guid);
    expect((await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: ADMIN })).status).toBe(200);
    await pass();
    const set = await api("GET", `/v3/cells/${cell.guid}/desired`, { token: cell.credential });
    const specs = (set.json.instances as { app_guid: string; index: number; instance_guid: string; env: Record<string, string> }[])
      .filter((i) => i.app_guid === app.guid).sort((a, b) => a.index - b.index);
    expect(specs).toHaveLength(2);
    for (const spec of specs) {
      expect(spec.env).toMatchObject({
        PORT: "8000", MEMORY_LIMIT: "256m", VCAP_SERVICES: "{}",
        INSTANCE_INDEX: String(spec.index), CF_INSTANCE_INDEX: String(spec.index), INSTANCE_GUID: spec.instance_guid, CF_INSTANCE_GUID: spec.instance_guid,
      });
      const vcap = JSON.parse(spec.env.VCAP_APPLICATION!);
      expect(vcap).toMatchObject({
        application_id: app.guid, application_name: app.name, name: app.name, space_id: space.guid, space_name: space.name,
        organization_id: DEFAULT_ORGANIZATION_GUID, organization_name: "default",
        application_uris: expect.arrayContaining(hosts.map((h) => `${h}.apps.localhost`)), limits: { mem: 256, disk: 256, fds: 16384 },
        process_id: app.guid, process_type: "web", instance_index: spec.index, instance_id: spec.instance_guid, port: 8000, host: "0.0.0.0",
      });
      expect(vcap.uris).toEqual(vcap.application_uris);
      expect(vcap.application_uris).toHaveLength(2);
    }
  });
});

describe("reports", () => {
  async function placedInstance() {
    const cell = await enroll("cell");
    await onlyActiveCell(cell.guid);
    const app = await appWithDroplet(space.guid);
    await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: ADMIN });
    await pass(); // the request only woke the scheduler
    const [instance] = await instancesOfApp(app.guid);
    expect(instance).toMatchObject({ cellGuid: cell.guid, state: "CLAIMED" });
    return { cell, app, instance: instance! };
  }

  it("moves an instance to RUNNING once, however often the cell says so", async () => {
    const { cell, instance } = await placedInstance();
    const routesBefore = (await api("GET", "/v3/routes/table", { token: ADMIN })).json.version;
    const send = () => api("POST", `/v3/cells/${cell.guid}/instances`, { token: cell.credential, body: { protocol: 1, instances: [report(instance.instanceGuid, "RUNNING")] } });
    expect((await send()).status).toBe(200);
    const [after1] = await db().select().from(schema.instances).where(eq(schema.instances.instanceGuid, instance.instanceGuid));
    expect((await send()).status).toBe(200);
    const [after2] = await db().select().from(schema.instances).where(eq(schema.instances.instanceGuid, instance.instanceGuid));
    expect(after1).toMatchObject({ state: "RUNNING", hostPort: 61001 });
    expect(after2!.since).toBe(after1!.since);
    expect((await api("GET", "/v3/routes/table", { token: ADMIN })).json.version).toBe(routesBefore + 1);
  });

  /** The app's log lines once there are `n` (API lines are written after the response). */
  async function waitForLines(appGuid: string, n: number): Promise<{ source?: string; line: string }[]> {
    for (let i = 0; i < 200; i++) {
      const lines = (await api("GET", `/v3/apps/${appGuid}/logs`, { token: ADMIN })).json.lines;
      if (lines.length >= n) return lines;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`fewer than ${n} lines in ${appGuid}'s logs`);
  }

  it("records a crash with its exit details, counting per Diego", async () => {
    const { cell, app, instance } = await placedInstance();
    const crash = report(instance.instanceGuid, "CRASHED", { exit: { status: 137, signal: "SIGKILL", oom: true }, reason: null });
    const send = () => api("POST", `/v3/cells/${cell.guid}/instances`, { token: cell.credential, body: { protocol: 1, instances: [crash] } });
    expect((await send()).status).toBe(200);
    expect((await send()).status).toBe(200);
    await pass();
    const rows = await instancesOfApp(app.guid);
    const crashed = rows.find((r) => r.instanceGuid === instance.instanceGuid);
    // The crash woke the scheduler: a first crash restarts at once, as a new instance with the count carried.
    expect(crashed).toBeUndefined();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ index: 0, crashCount: 1, state: "CLAIMED" });
    const events = await db().select().from(schema.auditEvents).where(eq(schema.auditEvents.targetGuid, app.guid));
    const crashes = events.filter((e) => e.type === "app.crash");
    expect(crashes).toHaveLength(1);
    expect(crashes[0]!.data).toMatchObject({ instance: instance.instanceGuid, index: 0, exit_status: 137, exit_signal: "SIGKILL", oom: true, exit_description: "out of memory", reason: "OOM", crash_count: 1 });
    expect(events.map((e) => e.type)).toContain("app.instances_replaced");
    // CC's process crash event too, by the process, with the same payload.
    const processCrashes = events.filter((e) => e.type === "audit.app.process.crash");
    expect(processCrashes).toHaveLength(1);
    expect(processCrashes[0]).toMatchObject({ actorGuid: instance.processGuid, actorType: "v3-process", actorName: "web", targetGuid: app.guid });
    expect(processCrashes[0]!.data).toEqual(crashes[0]!.data);
    // And CC's API lines in the app's logs (written after the response), after those of its creation and start.
    const lines = await waitForLines(app.guid, 4);
    expect(lines.map((l) => [l.source, l.line])).toEqual([
      ["API", `Created app with guid ${app.guid}`],
      ["API", `Starting app with guid ${app.guid}`],
      ["API", 'Process has crashed with type: "web"'],
      ["API", expect.stringMatching(new RegExp(`^App instance exited with guid ${app.guid} payload: \\{"instance"=>"${instance.instanceGuid}", "index"=>0, "cell_id"=>"${cell.guid}", "exit_status"=>137, .*"reason"=>"OOM", "crash_count"=>1, `))],
    ]);
  });

  it("refuses reports for another cell's instance or an unknown one, writing nothing", async () => {
    const { instance } = await placedInstance();
    const other = await enroll("cell");
    const theirs = await api("POST", `/v3/cells/${other.guid}/instances`, { token: other.credential, body: { protocol: 1, instances: [report(instance.instanceGuid, "RUNNING")] } });
    expect(theirs.status).toBe(403);
    const unknown = await api("POST", `/v3/cells/${other.guid}/instances`, { token: other.credential, body: { protocol: 1, instances: [report(crypto.randomUUID(), "RUNNING")] } });
    expect(unknown.status).toBe(403);
    const forOther = await api("POST", `/v3/cells/${instance.cellGuid}/instances`, { token: other.credential, body: { protocol: 1, instances: [report(instance.instanceGuid, "RUNNING")] } });
    expect(forOther.status).toBe(403);
    const [row] = await db().select().from(schema.instances).where(eq(schema.instances.instanceGuid, instance.instanceGuid));
    expect(row!.state).toBe("CLAIMED");
    // A repeated STOPPED for an instance already gone is fine.
    expect((await api("POST", `/v3/cells/${other.guid}/instances`, { token: other.credential, body: { protocol: 1, instances: [report(crypto.randomUUID(), "STOPPED")] } })).status).toBe(200);
    expect((await api("POST", `/v3/cells/${other.guid}/instances`, { token: other.credential, body: { protocol: 1, instances: [] } })).status).toBe(422);
  });

  it("a cell heartbeating or reporting in another cell's name is refused, and that cell's presence, resources and instances stay as they were; usage it lists for them never shows", async () => {
    const { cell: victim, instance } = await placedInstance();
    const attacker = await enroll("cell");
    const [before] = await db().select().from(schema.cells).where(eq(schema.cells.guid, victim.guid));
    // Kept alive while it is gone, its room shrunk to nothing, its instance "crashed": each would move work off or onto it.
    const crashed = { ...report(instance.instanceGuid, "CRASHED"), exit: { status: 1, signal: null, oom: false } };
    const beat = await api("POST", `/v3/cells/${victim.guid}/heartbeat`, { token: attacker.credential, body: heartbeat([crashed], { capacity: { memory_mb: 1, disk_mb: 1, containers: 1 } }) });
    expect(beat.status).toBe(403);
    const reported = await api("POST", `/v3/cells/${victim.guid}/instances`, { token: attacker.credential, body: { protocol: 1, instances: [crashed] } });
    expect(reported.status).toBe(403);
    // Nor given made-up usage by a beat of the attacker's own that lists the victim's instance: usage is read from the instance's own cell.
    const lied = await api("POST", `/v3/cells/${attacker.guid}/heartbeat`, { token: attacker.credential, body: heartbeat([{ ...report(instance.instanceGuid, "RUNNING"), usage: { cpu: 9, mem: 9, disk: 9 } }]) });
    expect(lied.status).toBe(200);
    expect((await listInstancesOfProcess(db(), instance.processGuid))[0]).toMatchObject({ usage: null, usageAt: null });
    // Nor does it grow its own row with guids that are not its instances.
    const [own] = await db().select().from(schema.cells).where(eq(schema.cells.guid, attacker.guid));
    expect(own!.instanceUsage).toEqual({});
    // Nor kept alive by a beat that lists nothing.
    const kept = await api("POST", `/v3/cells/${victim.guid}/heartbeat`, { token: attacker.credential, body: presence({ capacity: { memory_mb: 1, disk_mb: 1, containers: 1 } }) });
    expect(kept.status).toBe(403);
    const [after] = await db().select().from(schema.cells).where(eq(schema.cells.guid, victim.guid));
    expect(after).toEqual(before);
    const [row] = await db().select().from(schema.instances).where(eq(schema.instances.instanceGuid, instance.instanceGuid));
    expect(row!.state).toBe("CLAIMED");
    // A token no cell holds: 401, as before any lookup was left to the route, whatever it sends.
    const made = `bc_${"A".repeat(43)}`;
    expect((await api("POST", `/v3/cells/${victim.guid}/heartbeat`, { token: made, body: heartbeat([]) })).status).toBe(401);
    expect((await api("POST", `/v3/cells/${victim.guid}/heartbeat`, { token: made, body: { protocol: 1 } })).status).toBe(401);
    expect((await api("POST", `/v3/cells/${victim.guid}/instances`, { token: made, body: { protocol: 1, instances: [] } })).status).toBe(401);
    expect((await api("GET", `/v3/cells/${victim.guid}/desired`, { token: made })).status).toBe(401);
    expect((await api("GET", `/v3/cells/${victim.guid}/desired?after=-1`, { token: made })).status).toBe(401);
    // Another cell's token with a bad body: 403, not the 422 its owner gets.
    expect((await api("POST", `/v3/cells/${victim.guid}/heartbeat`, { token: attacker.credential, body: { protocol: 1 } })).status).toBe(403);
    expect((await api("POST", `/v3/cells/${attacker.guid}/heartbeat`, { token: attacker.credential, body: { protocol: 1 } })).status).toBe(422);
    // A path no cell has (a stray %) is refused, not a server error.
    expect((await api("POST", "/v3/cells/%ZZ/heartbeat", { token: attacker.credential, body: heartbeat([]) })).status).toBe(403);
    expect((await api("POST", "/v3/cells/%ZZ/heartbeat", { body: heartbeat([]) })).status).toBe(401);
  });

  it("heartbeats renew the cell, apply reports, skip foreign ones and forget stopped instances", async () => {
    const { cell, app, instance } = await placedInstance();
    const foreign = crypto.randomUUID();
    const res = await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: heartbeat([report(instance.instanceGuid, "RUNNING"), report(foreign, "RUNNING")], { cached_layers: [`sha256:${"b".repeat(64)}`] }) });
    expect(res.status).toBe(200);
    expect(res.json.skipped).toEqual([{ instance_guid: foreign, reason: `instance ${foreign} is not placed on this cell` }]);
    const [c] = await db().select().from(schema.cells).where(eq(schema.cells.guid, cell.guid));
    expect(c!.lastHeartbeatAt).toBeGreaterThan(Date.now() - 5_000);
    expect(c!.cachedLayers).toEqual([`sha256:${"b".repeat(64)}`]);
    expect((await instancesOfApp(app.guid))[0]!.state).toBe("RUNNING");

    expect((await api("POST", `/v3/apps/${app.guid}/actions/stop`, { token: ADMIN })).status).toBe(200);
    await pass();
    expect((await instancesOfApp(app.guid))[0]!.state).toBe("STOPPING");
    const set = await api("GET", `/v3/cells/${cell.guid}/desired`, { token: cell.credential });
    // (Other tests' instances evacuate onto this cell: only this app's must be gone.)
    expect(set.json.instances.filter((i: { app_guid: string }) => i.app_guid === app.guid)).toEqual([]);
    await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: heartbeat([]) });
    expect(await instancesOfApp(app.guid)).toEqual([]);
  });

  it("a heartbeat without a list renews the cell and its resources, brings it back from LOST, and leaves its instances as they were", async () => {
    const { cell, instance } = await placedInstance();
    await db().update(schema.cells).set({ state: "LOST", lastHeartbeatAt: 0 }).where(eq(schema.cells.guid, cell.guid));
    const layer = `sha256:${"c".repeat(64)}`;
    const res = await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: presence({ cached_layers: [layer] }) });
    expect(res.status).toBe(200);
    // Back from LOST: what it runs comes with its next beat.
    expect(res.json).toEqual({ protocol: 1, skipped: [], list_instances: true });
    expect((await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: presence({ cached_layers: [layer] }) })).json).toEqual({ protocol: 1, skipped: [] });
    const [c] = await db().select().from(schema.cells).where(eq(schema.cells.guid, cell.guid));
    expect(c).toMatchObject({ state: "ACTIVE", cachedLayers: [layer] });
    expect(c!.lastHeartbeatAt).toBeGreaterThan(Date.now() - 5_000);
    // Not listed is not gone: the instance the cell has not reported yet is still CLAIMED on it.
    const [row] = await db().select().from(schema.instances).where(eq(schema.instances.instanceGuid, instance.instanceGuid));
    expect(row).toMatchObject({ state: "CLAIMED", cellGuid: cell.guid });
  });

  it("asks for the list while the cell has an instance to stop, and the list that no longer names it forgets it", async () => {
    const { cell, app } = await placedInstance();
    expect((await api("POST", `/v3/apps/${app.guid}/actions/stop`, { token: ADMIN })).status).toBe(200);
    await pass();
    expect((await instancesOfApp(app.guid))[0]!.state).toBe("STOPPING");
    const asked = await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: presence() });
    expect(asked.json.list_instances).toBe(true);
    expect(await instancesOfApp(app.guid)).toHaveLength(1);
    await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: heartbeat([]) });
    expect(await instancesOfApp(app.guid)).toEqual([]);
  });

  it("brings a LOST cell back with its first heartbeat", async () => {
    const cell = await enroll("cell");
    await db().update(schema.cells).set({ state: "LOST" }).where(eq(schema.cells.guid, cell.guid));
    await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: heartbeat([]) });
    const [c] = await db().select().from(schema.cells).where(eq(schema.cells.guid, cell.guid));
    expect(c!.state).toBe("ACTIVE");
  });

  it("rejects a malformed heartbeat naming the field", async () => {
    const cell = await enroll("cell");
    const res = await api("POST", `/v3/cells/${cell.guid}/heartbeat`, { token: cell.credential, body: heartbeat([], { free: { memory_mb: -1, disk_mb: 0, containers: 0 } }) });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toMatch(/^free\.memory_mb/);
  });
});

describe("GET /v3/routes/table", () => {
  it("is for routers and admins only, and holds a poll until the table changes", async () => {
    expect((await api("GET", "/v3/routes/table", { token: (await createUser()).token })).status).toBe(403);
    const cell = await enroll("cell");
    expect((await api("GET", "/v3/routes/table", { token: cell.credential })).status).toBe(403);
    const router = await enroll("router");
    const first = await api("GET", "/v3/routes/table", { token: router.credential });
    const idle = await api("GET", `/v3/routes/table?after=${first.json.version}`, { token: router.credential });
    expect(idle.status).toBe(204);
    await pass();
  });
});

describe("staging tasks on cells", () => {
  async function cellStagedBuild() {
    const cell = await enroll("cell");
    await onlyActiveCell(cell.guid);
    const app = await appWithDroplet(space.guid);
    const pkg = await api("POST", "/v3/packages", { token: ADMIN, body: { type: "docker", relationships: { app: { data: { guid: app.guid } } }, data: { image: "private.registry:5000/web:2", username: "u", password: "s3cret" } } });
    expect(pkg.status).toBe(201);
    const build = crypto.randomUUID();
    await db().insert(schema.builds).values({ guid: build, appGuid: app.guid, packageGuid: pkg.json.guid, state: "STAGING", stagingLocation: "cell", createdByGuid: "admin" });
    await pass();
    return { cell, app, build };
  }

  it("hands the task to a live cell in its desired set, with the package's credentials", async () => {
    const { cell, build } = await cellStagedBuild();
    const set = await api("GET", `/v3/cells/${cell.guid}/desired`, { token: cell.credential });
    expect(set.json.staging_tasks.filter((t: { build_guid: string }) => t.build_guid === build)).toEqual([{ build_guid: build, image: "private.registry:5000/web:2", credentials: { username: "u", password: "s3cret" }, registry_access_version: 0 }]);
  });

  it("stages the build from the cell's result, as Worker staging would", async () => {
    const { cell, build } = await cellStagedBuild();
    const before = await api("GET", `/v3/cells/${cell.guid}/desired`, { token: cell.credential });
    const other = await enroll("cell");
    const body = { protocol: 1, build_guid: build, state: "STAGED", image: { ...IMAGE, ref: "private.registry:5000/web:2" } };
    expect((await api("POST", `/v3/cells/${other.guid}/staging_results`, { token: other.credential, body })).status).toBe(403);
    const res = await api("POST", `/v3/cells/${cell.guid}/staging_results`, { token: cell.credential, body });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ build_guid: build, state: "STAGED" });
    const [row] = await db().select().from(schema.builds).where(eq(schema.builds.guid, build));
    const [droplet] = await db().select().from(schema.droplets).where(eq(schema.droplets.guid, row!.dropletGuid!));
    expect(droplet).toMatchObject({ state: "STAGED", manifestDigest: IMAGE.manifest_digest, processTypes: { web: "/bin/httpd -f -p 8000" } });
    expect(droplet!.imageSpec).toMatchObject({ ref: "private.registry:5000/web:2", layers: IMAGE.layers });
    const after = await api("GET", `/v3/cells/${cell.guid}/desired`, { token: cell.credential });
    expect(after.json.version).toBeGreaterThan(before.json.version);
    expect(after.json.staging_tasks.filter((t: { build_guid: string }) => t.build_guid === build)).toEqual([]);
    // A repeated result changes nothing.
    expect((await api("POST", `/v3/cells/${cell.guid}/staging_results`, { token: cell.credential, body })).json).toEqual({ build_guid: build, state: "STAGED" });
  });

  it("a cell posting a staged image with 5 000 Env entries is refused with 422 and nothing is stored", async () => {
    const { cell, build } = await cellStagedBuild();
    const image = { ...IMAGE, ref: "private.registry:5000/web:2", config: { ...IMAGE.config, env: Array.from({ length: 5000 }, (_, i) => `V${i}=x`) } };
    const res = await api("POST", `/v3/cells/${cell.guid}/staging_results`, { token: cell.credential, body: { protocol: 1, build_guid: build, state: "STAGED", image } });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toMatch(/the image config is too large: its Env has 5000 entries, more than the 1000 accepted/);
    const [row] = await db().select().from(schema.builds).where(eq(schema.builds.guid, build));
    expect(row).toMatchObject({ state: "STAGING", dropletGuid: null });
  });

  it("fails the build with CC's staging error text", async () => {
    const { cell, build } = await cellStagedBuild();
    const res = await api("POST", `/v3/cells/${cell.guid}/staging_results`, { token: cell.credential, body: { protocol: 1, build_guid: build, state: "FAILED", error: "manifest unknown" } });
    expect(res.json).toEqual({ build_guid: build, state: "FAILED" });
    const [row] = await db().select().from(schema.builds).where(eq(schema.builds.guid, build));
    expect(row).toMatchObject({ state: "FAILED", error: "StagingError - Staging error: manifest unknown" });
  });
});
