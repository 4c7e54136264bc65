import { beforeAll, describe, expect, it } from "vitest";
import { listInstancesOfProcess, type ActualInstance } from "../../worker/db/instances";
import type { Process } from "../../worker/db/processes";
import { presentStats } from "../../worker/presenters/processes";
import * as schema from "../../worker/db/schema";
import { dockerSpaceWithDeveloper, makeApp, makeStartableApp } from "./app-fixtures";
import { ADMIN, api, db, unique } from "./support";

let space: { guid: string; name: string };
let dev: { guid: string; token: string };

beforeAll(async () => {
  ({ space, dev } = await dockerSpaceWithDeveloper());
});

describe("GET /v3/processes", () => {
  it("shows one process in CC's shape and lists with filters", async () => {
    const app = await makeApp(space.guid, dev.token);
    const res = await api("GET", `/v3/processes/${app.guid}`, { token: dev.token });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      guid: app.guid, type: "web", command: null, user: null, instances: 1, memory_in_mb: 1024, disk_in_mb: 1024,
      log_rate_limit_in_bytes_per_second: -1,
      readiness_health_check: { type: "process", data: { invocation_timeout: null, interval: null } },
      relationships: { app: { data: { guid: app.guid } }, revision: null },
      links: {
        self: { href: `https://berth.test/v3/processes/${app.guid}` },
        scale: { href: `https://berth.test/v3/processes/${app.guid}/actions/scale`, method: "POST" },
        app: { href: `https://berth.test/v3/apps/${app.guid}` },
        space: { href: `https://berth.test/v3/spaces/${space.guid}` },
        stats: { href: `https://berth.test/v3/processes/${app.guid}/stats` },
      },
    });
    expect(res.json.version).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.json).not.toHaveProperty("ports");
    const list = await api("GET", `/v3/processes?app_guids=${app.guid}&types=web`, { token: dev.token });
    expect(list.json.resources.map((p: any) => p.guid)).toEqual([app.guid]);
    expect((await api("GET", `/v3/processes?space_guids=${space.guid}&types=worker`, { token: dev.token })).json.resources).toEqual([]);
    expect((await api("GET", `/v3/processes/${crypto.randomUUID()}`, { token: ADMIN })).json.errors[0].detail).toBe("Process not found");
    expect((await api("GET", "/v3/processes?app_guid=x", { token: ADMIN })).status).toBe(422);
  });
});

describe("PATCH /v3/processes/:guid", () => {
  it("sets and resets the command, sets the user, and leaves the version alone", async () => {
    const app = await makeStartableApp(space.guid, dev.token);
    const before = (await api("GET", `/v3/processes/${app.guid}`, { token: dev.token })).json;
    expect(before.command).toBe("/bin/app --serve");
    const set = await api("PATCH", `/v3/processes/${app.guid}`, { token: dev.token, body: { command: "node server.js", user: "1000:1000" } });
    expect(set.status).toBe(200);
    expect(set.json).toMatchObject({ command: "node server.js", user: "1000:1000", version: before.version });
    const reset = await api("PATCH", `/v3/processes/${app.guid}`, { token: dev.token, body: { command: null, user: null } });
    expect(reset.json).toMatchObject({ command: "/bin/app --serve", user: null });
  });

  it("edits the health check as CF: partial data merges, the endpoint only for http", async () => {
    const app = await makeApp(space.guid, dev.token);
    const http = await api("PATCH", `/v3/processes/${app.guid}`, {
      token: dev.token, body: { health_check: { type: "http", data: { timeout: 90, endpoint: "/healthz", invocation_timeout: 5, interval: 10 } } },
    });
    expect(http.json.health_check).toEqual({ type: "http", data: { timeout: 90, invocation_timeout: 5, interval: 10, endpoint: "/healthz" } });
    const partial = await api("PATCH", `/v3/apps/${app.guid}/processes/web`, { token: dev.token, body: { health_check: { data: { timeout: 30 } } } });
    expect(partial.json.health_check).toEqual({ type: "http", data: { timeout: 30, invocation_timeout: 5, interval: 10, endpoint: "/healthz" } });
    const port = await api("PATCH", `/v3/processes/${app.guid}`, { token: dev.token, body: { health_check: { type: "port" } } });
    expect(port.json.health_check).toEqual({ type: "port", data: { timeout: 30, invocation_timeout: 5, interval: 10 } });
    const back = await api("PATCH", `/v3/processes/${app.guid}`, { token: dev.token, body: { health_check: { type: "http" } } });
    expect(back.json.health_check.data.endpoint).toBeNull();
    const nulls = await api("PATCH", `/v3/processes/${app.guid}`, { token: dev.token, body: { health_check: { type: "process", data: { timeout: null } } } });
    expect(nulls.json.health_check).toEqual({ type: "process", data: { timeout: null, invocation_timeout: 5, interval: 10 } });
  });

  it.each([
    ["an endpoint on a port check", { health_check: { type: "port", data: { endpoint: "/x" } } }, 'Health check type must be "http" to set a health check HTTP endpoint'],
    ["a timeout above CC's maximum", { health_check: { data: { timeout: 181 } } }, "health_check.data.timeout"],
    ["a zero interval", { health_check: { data: { interval: 0 } } }, "health_check.data.interval"],
    ["an unknown check type", { health_check: { type: "none" } }, "health_check.type"],
    ["an endpoint that is no path", { health_check: { type: "http", data: { endpoint: "healthz" } } }, "health_check.data.endpoint: must be a URI path"],
    ["an unknown health check key", { health_check: { type: "http", path: "/" } }, "Unknown field(s): 'health_check.path'"],
    ["an empty command", { command: "" }, "command"],
    ["a user with spaces", { user: "root user" }, "user"],
    ["an instances field", { instances: 3 }, "Unknown field(s): 'instances'"],
  ])("refuses %s with 422", async (_what, patch, detail) => {
    const app = await makeApp(space.guid, dev.token);
    const res = await api("PATCH", `/v3/processes/${app.guid}`, { token: dev.token, body: patch });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toContain(detail);
  });
});

describe("scale", () => {
  it("scales with 202 through both paths and records it", async () => {
    const app = await makeApp(space.guid, dev.token);
    const res = await api("POST", `/v3/processes/${app.guid}/actions/scale`, {
      token: dev.token, body: { instances: 3, memory_in_mb: 256, disk_in_mb: 512, log_rate_limit_in_bytes_per_second: 1024 },
    });
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ instances: 3, memory_in_mb: 256, disk_in_mb: 512, log_rate_limit_in_bytes_per_second: 1024 });
    const nested = await api("POST", `/v3/apps/${app.guid}/processes/web/actions/scale`, { token: dev.token, body: { instances: 0 } });
    expect(nested.status).toBe(202);
    expect(nested.json).toMatchObject({ instances: 0, memory_in_mb: 256 });
    const events = await db().select().from(schema.auditEvents);
    expect(events.filter((e) => e.targetGuid === app.guid && e.type === "audit.app.process.scale")).toHaveLength(2);
  });

  it.each([
    ["negative instances", { instances: -1 }, "instances"],
    ["more instances than Berth places", { instances: 1001 }, "instances"],
    ["fractional memory", { memory_in_mb: 1.5 }, "memory_in_mb"],
    ["zero disk", { disk_in_mb: 0 }, "disk_in_mb"],
    ["a string", { instances: "2" }, "instances"],
    ["an unknown key", { cpu: 2 }, "Unknown field(s): 'cpu'"],
  ])("refuses %s with 422", async (_what, scale, detail) => {
    const app = await makeApp(space.guid, dev.token);
    const res = await api("POST", `/v3/processes/${app.guid}/actions/scale`, { token: dev.token, body: scale });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toContain(detail);
  });

  it("answers 404 for an unknown process or process type", async () => {
    const app = await makeApp(space.guid, dev.token);
    expect((await api("POST", `/v3/processes/${crypto.randomUUID()}/actions/scale`, { token: ADMIN, body: { instances: 1 } })).status).toBe(404);
    expect((await api("POST", `/v3/apps/${app.guid}/processes/worker/actions/scale`, { token: ADMIN, body: { instances: 1 } })).status).toBe(404);
  });
});

// The real scheduler runs on every wake (start, scale) and writes the instances
// table itself, so the CF state mapping is tested on the pure presenter, the
// query on rows inserted with no wake in between, and the endpoint on whatever
// the scheduler made.
describe("stats", () => {
  const proc = (over: Partial<Process> = {}): Process => ({
    guid: "p1", appGuid: "p1", spaceGuid: "s1", appName: "a", appState: "STARTED", type: "web", version: "v2",
    command: null, detectedCommand: null, user: null, instances: 6, memoryInMb: 256, diskInMb: 512,
    logRateLimitInBytesPerSecond: -1, createdAt: "", updatedAt: "",
    healthCheck: { type: "port", timeout: null, invocationTimeout: null, interval: null, endpoint: null }, ...over,
  });
  const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
  const row = (over: Partial<ActualInstance> & Pick<ActualInstance, "index" | "state">): ActualInstance => ({
    instanceGuid: crypto.randomUUID(), processVersion: "v2", since: NOW - 65_000, cellAddress: null, hostPort: null,
    containerPort: 8080, memoryMb: 256, diskMb: 512, crashReason: null, placementError: null, usage: null, usageAt: null, ...over,
  });

  it("maps actual LRPs to CF's states for every desired index", () => {
    const rows = [
      row({ index: 0, state: "RUNNING", cellAddress: "10.1.0.7", hostPort: 61001, usage: { cpu: 0.25, mem: 1000, disk: 2000 }, usageAt: NOW }),
      row({ index: 0, state: "STARTING" }), // a replacement beside a running one: the running one is shown
      row({ index: 1, state: "UNCLAIMED", placementError: "insufficient resources: memory" }),
      row({ index: 2, state: "UNCLAIMED" }),
      row({ index: 3, state: "CLAIMED", cellAddress: "10.1.0.7" }),
      row({ index: 4, state: "CRASHED", cellAddress: "10.1.0.7", crashReason: "exited with status 1" }),
      row({ index: 5, state: "RUNNING", processVersion: "v1" }), // an old version's row is not shown
      row({ index: 9, state: "RUNNING" }), // past `instances`
    ];
    const r = presentStats(proc(), rows, NOW).resources as any[];
    expect(r.map((s) => [s.index, s.state])).toEqual([[0, "RUNNING"], [1, "DOWN"], [2, "STARTING"], [3, "STARTING"], [4, "CRASHED"], [5, "DOWN"]]);
    expect(r[0]).toEqual({
      type: "web", index: 0, instance_guid: rows[0]!.instanceGuid, state: "RUNNING", routable: true, host: "10.1.0.7", instance_internal_ip: "",
      uptime: 65, mem_quota: 256 * 1024 * 1024, disk_quota: 512 * 1024 * 1024, log_rate_limit: -1, fds_quota: 16384, isolation_segment: null, details: null,
      instance_ports: [{ external: 61001, internal: 8080, external_tls_proxy_port: 0, internal_tls_proxy_port: 0 }],
      usage: { time: "2026-11-27T12:00:00.000Z", cpu: 0.25, cpu_entitlement: 0, mem: 1000, disk: 2000, log_rate: 0 },
    });
    expect(r[1]).toMatchObject({ state: "DOWN", details: "insufficient resources: memory", routable: false });
    expect(r[2]).toMatchObject({ usage: {}, instance_ports: [], host: "" });
    expect(r[5]).toEqual({ type: "web", index: 5, state: "DOWN", routable: false, uptime: 0, isolation_segment: null, details: null });
  });

  it("shows a stopped process's leftovers as STOPPING, and a started one with nothing as DOWN", () => {
    const stopped = presentStats(proc({ appState: "STOPPED" }), [row({ index: 0, state: "RUNNING" })], NOW).resources;
    expect(stopped.map((s) => s.state)).toEqual(["STOPPING"]);
    expect(presentStats(proc({ appState: "STOPPED" }), [], NOW)).toEqual({ resources: [] });
    expect(presentStats(proc({ instances: 1 }), [], NOW).resources).toEqual([{ type: "web", index: 0, state: "DOWN", routable: false, uptime: 0, isolation_segment: null, details: null }]);
  });

  it("reads the instances table with the cell's address, the usage its cell listed and the spec's port and quotas", async () => {
    const app = await makeApp(space.guid, dev.token);
    const cellGuid = crypto.randomUUID();
    const [instanceGuid, unlisted] = [crypto.randomUUID(), crypto.randomUUID()];
    await db().insert(schema.cells).values({
      guid: cellGuid, name: unique("cell"), zone: "z1", address: "10.1.0.8", tokenHash: unique("h"), capacity: { memory_mb: 1, disk_mb: 1, containers: 1 }, state: "ACTIVE",
      instanceUsage: { [instanceGuid]: { cpu: 0.5, mem: 1, disk: 2 } }, usageReportedAt: 456,
    });
    const row = { processGuid: app.guid, appGuid: app.guid, processVersion: "v", since: 123, spec: { port: 9000, memory_mb: 128, disk_mb: 256 }, cellGuid, state: "RUNNING" as const, placementError: null };
    await db().insert(schema.instances).values([{ ...row, instanceGuid, index: 0, hostPort: 61010 }, { ...row, instanceGuid: unlisted, index: 1, hostPort: 61011 }]);
    const common = { processVersion: "v", state: "RUNNING", since: 123, cellAddress: "10.1.0.8", containerPort: 9000, memoryMb: 128, diskMb: 256, crashReason: null, placementError: null };
    expect(await listInstancesOfProcess(db(), app.guid)).toEqual([
      { ...common, instanceGuid, index: 0, hostPort: 61010, usage: { cpu: 0.5, mem: 1, disk: 2 }, usageAt: 456 },
      // Not in its cell's last list (placed since): no usage yet.
      { ...common, instanceGuid: unlisted, index: 1, hostPort: 61011, usage: null, usageAt: null },
    ]);
  });

  it("lists a space's processes with every process's stats in one call (include=stats), the same as each /stats", async () => {
    const { space: own, dev: owner } = await dockerSpaceWithDeveloper();
    const apps = [await makeStartableApp(own.guid, owner.token), await makeStartableApp(own.guid, owner.token), await makeApp(own.guid, owner.token)];
    await api("POST", `/v3/processes/${apps[0]!.guid}/actions/scale`, { token: owner.token, body: { instances: 3 } });
    for (const a of apps.slice(0, 2)) expect((await api("POST", `/v3/apps/${a.guid}/actions/start`, { token: owner.token })).status).toBe(200);
    const list = await api("GET", `/v3/processes?space_guids=${own.guid}&types=web&include=stats`, { token: owner.token });
    expect(list.status).toBe(200);
    expect(list.json.resources.map((p: any) => p.guid)).toEqual(apps.map((a) => a.guid));
    const included = list.json.included.stats as { guid: string; resources: any[] }[];
    expect(included.map((s) => s.guid)).toEqual(apps.map((a) => a.guid));
    for (const s of included) {
      const one = await api("GET", `/v3/processes/${s.guid}/stats`, { token: owner.token });
      expect(s.resources.map((r) => [r.index, r.state])).toEqual(one.json.resources.map((r: any) => [r.index, r.state]));
    }
    expect(included[0]!.resources).toHaveLength(3);
    expect(included[2]!.resources).toEqual([]); // never started: nothing runs
    // Without include, no included; an unknown include is refused.
    expect((await api("GET", `/v3/processes?space_guids=${own.guid}`, { token: owner.token })).json).not.toHaveProperty("included");
    const bad = await api("GET", `/v3/processes?space_guids=${own.guid}&include=space`, { token: owner.token });
    expect(bad.status).toBe(422);
    expect(bad.json.errors[0].detail).toContain("include must be stats");
  });

  it("renders what the scheduler made once the app starts: one entry per desired index", async () => {
    const app = await makeStartableApp(space.guid, dev.token);
    await api("POST", `/v3/processes/${app.guid}/actions/scale`, { token: dev.token, body: { instances: 2 } });
    expect((await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: dev.token })).status).toBe(200);
    for (const path of [`/v3/processes/${app.guid}/stats`, `/v3/apps/${app.guid}/processes/web/stats`]) {
      const res = await api("GET", path, { token: dev.token });
      expect(res.status).toBe(200);
      expect(res.json.resources.map((s: any) => s.index)).toEqual([0, 1]);
      for (const s of res.json.resources) expect(["DOWN", "STARTING", "RUNNING", "CRASHED"]).toContain(s.state);
    }
  });
});
