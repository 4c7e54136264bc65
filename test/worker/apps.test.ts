import { beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import * as schema from "../../worker/db/schema";
import { ADMIN, api, createSpace, db, unique } from "./support";
import { dockerSpaceWithDeveloper, insertDroplet, makeApp, makeStartableApp } from "./app-fixtures";

let space: { guid: string; name: string };
let dev: { guid: string; token: string };

beforeAll(async () => {
  ({ space, dev } = await dockerSpaceWithDeveloper());
});

const createBody = (name: string, spaceGuid: string, extra: Record<string, unknown> = {}) => ({
  name, relationships: { space: { data: { guid: spaceGuid } } }, lifecycle: { type: "docker", data: {} }, ...extra,
});

describe("POST /v3/apps", () => {
  it("creates a stopped docker app and its web process in CC's shape", async () => {
    const name = unique("web");
    const res = await api("POST", "/v3/apps", { token: dev.token, body: createBody(name, space.guid, { environment_variables: { A: "1" } }) });
    expect(res.status).toBe(201);
    const app = res.json;
    expect(app).toMatchObject({
      name, state: "STOPPED", lifecycle: { type: "docker", data: {} },
      relationships: { space: { data: { guid: space.guid } }, current_droplet: { data: { guid: null } } },
      metadata: { labels: {}, annotations: {} },
    });
    expect(app.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(app.links.self.href).toBe(`https://berth.test/v3/apps/${app.guid}`);
    expect(app.links.start).toEqual({ href: `https://berth.test/v3/apps/${app.guid}/actions/start`, method: "POST" });
    expect(Object.keys(app.links).sort()).toEqual([
      "clear_buildpack_cache", "current_droplet", "deployed_revisions", "droplets", "environment_variables", "features",
      "packages", "processes", "revisions", "self", "space", "start", "stop", "tasks",
    ]);
    const web = await api("GET", `/v3/processes/${app.guid}`, { token: dev.token });
    expect(web.status).toBe(200);
    expect(web.json).toMatchObject({
      guid: app.guid, type: "web", instances: 1, memory_in_mb: 1024, disk_in_mb: 1024,
      health_check: { type: "port", data: { timeout: null, invocation_timeout: null, interval: null } },
      relationships: { app: { data: { guid: app.guid } } },
    });
    const env = await api("GET", `/v3/apps/${app.guid}/environment_variables`, { token: dev.token });
    expect(env.json.var).toEqual({ A: "1" });
    const events = await db().select().from(schema.auditEvents).where(eq(schema.auditEvents.targetGuid, app.guid));
    expect(events.map((e) => e.type)).toContain("audit.app.create");
  });

  it("defaults the lifecycle to docker", async () => {
    const res = await api("POST", "/v3/apps", { token: ADMIN, body: { name: unique("nolc"), relationships: { space: { data: { guid: space.guid } } } } });
    expect(res.status).toBe(201);
    expect(res.json.lifecycle).toEqual({ type: "docker", data: {} });
  });

  it("refuses a duplicate name in the same space with 422", async () => {
    const name = unique("dup");
    await makeApp(space.guid, ADMIN, name);
    const res = await api("POST", "/v3/apps", { token: ADMIN, body: createBody(name, space.guid) });
    expect(res.status).toBe(422);
    expect(res.json.errors[0]).toMatchObject({ code: 10008, title: "CF-UnprocessableEntity", detail: `App with the name '${name}' already exists.` });
  });

  it("allows the same name in another space", async () => {
    const name = unique("twin");
    const other = await createSpace();
    await makeApp(space.guid, ADMIN, name);
    expect((await api("POST", "/v3/apps", { token: ADMIN, body: createBody(name, other.guid) })).status).toBe(201);
  });

  it.each([
    ["a buildpack lifecycle", { lifecycle: { type: "buildpack", data: {} } }, "lifecycle.type: must be docker"],
    ["docker lifecycle data", { lifecycle: { type: "docker", data: { image: "x" } } }, "'lifecycle.data.image'"],
    ["an unknown field", { colour: "blue" }, "Unknown field(s): 'colour'"],
    ["a VCAP_ env var", { environment_variables: { VCAP_SERVICES: "{}" } }, "environment_variables.VCAP_SERVICES: cannot start with VCAP_"],
    ["PORT", { environment_variables: { PORT: "80" } }, "environment_variables.PORT: cannot set PORT"],
    ["a non-string env value", { environment_variables: { N: 1 } }, "environment_variables.N"],
    ["an empty name", { name: "" }, "name"],
  ])("refuses %s with 422 naming the field", async (_what, patch, detail) => {
    const res = await api("POST", "/v3/apps", { token: ADMIN, body: { ...createBody(unique("bad"), space.guid), ...patch } });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toContain(detail);
  });

  it("refuses a missing space relationship, malformed JSON and oversized bodies", async () => {
    const missing = await api("POST", "/v3/apps", { token: ADMIN, body: { name: unique("x") } });
    expect(missing.status).toBe(422);
    expect(missing.json.errors[0].detail).toContain("relationships");
    const broken = await api("POST", "/v3/apps", { token: ADMIN, raw: "{not json" });
    expect(broken.status).toBe(400);
    expect(broken.json.errors[0].title).toBe("CF-MessageParseError");
    const big = await api("POST", "/v3/apps", { token: ADMIN, body: createBody(unique("big"), space.guid, { environment_variables: { X: "x".repeat(300 * 1024) } }) });
    expect(big.status).toBe(413);
    expect(big.json.errors[0].title).toBe("CF-RequestEntityTooLarge");
  });

  it("answers 422 for a space that does not exist or the developer is not in", async () => {
    const outside = await createSpace();
    for (const [token, guid] of [[ADMIN, crypto.randomUUID()], [dev.token, outside.guid]] as const) {
      const res = await api("POST", "/v3/apps", { token, body: createBody(unique("nospace"), guid) });
      expect(res.status).toBe(422);
      expect(res.json.errors[0].detail).toBe("Invalid space. Ensure that the space exists and you have access to it.");
    }
  });
});

describe("GET /v3/apps", () => {
  it("filters by names and space_guids and paginates", async () => {
    const s = await createSpace();
    const names = [unique("p"), unique("p"), unique("p")];
    for (const n of names) await makeApp(s.guid, ADMIN, n);
    const page1 = await api("GET", `/v3/apps?space_guids=${s.guid}&per_page=2`, { token: ADMIN });
    expect(page1.status).toBe(200);
    expect(page1.json.pagination.total_results).toBe(3);
    expect(page1.json.pagination.total_pages).toBe(2);
    expect(page1.json.resources.map((a: any) => a.name)).toEqual(names.slice(0, 2));
    const page2 = await api("GET", new URL(page1.json.pagination.next.href).pathname + new URL(page1.json.pagination.next.href).search, { token: ADMIN });
    expect(page2.json.resources.map((a: any) => a.name)).toEqual(names.slice(2));
    expect(page2.json.pagination.next).toBeNull();
    const byName = await api("GET", `/v3/apps?names=${names[1]}`, { token: ADMIN });
    expect(byName.json.resources.map((a: any) => a.name)).toEqual([names[1]]);
    const desc = await api("GET", `/v3/apps?space_guids=${s.guid}&order_by=-name`, { token: ADMIN });
    expect(desc.json.resources.map((a: any) => a.name)).toEqual([...names].sort().reverse());
  });

  it("shows a developer only the apps of their spaces", async () => {
    const outside = await createSpace();
    const hidden = await makeApp(outside.guid);
    const mine = await makeApp(space.guid);
    const res = await api("GET", "/v3/apps?per_page=5000", { token: dev.token });
    const guids = res.json.resources.map((a: any) => a.guid);
    expect(guids).toContain(mine.guid);
    expect(guids).not.toContain(hidden.guid);
    const filtered = await api("GET", `/v3/apps?space_guids=${outside.guid}`, { token: dev.token });
    expect(filtered.json.resources).toEqual([]);
  });

  it.each([
    ["an unknown query parameter", "?colour=blue", "Unknown field(s): 'colour'"],
    ["per_page above 5000", "?per_page=5001", "per_page"],
    ["page 0", "?page=0", "page"],
    ["a bad order_by", "?order_by=state", "order_by"],
  ])("refuses %s with 422", async (_what, query, detail) => {
    const res = await api("GET", `/v3/apps${query}`, { token: ADMIN });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toContain(detail);
  });
});

describe("GET/PATCH/DELETE /v3/apps/:guid", () => {
  it("gets one app and answers 404 for an unknown guid", async () => {
    const app = await makeApp(space.guid);
    expect((await api("GET", `/v3/apps/${app.guid}`, { token: dev.token })).json.name).toBe(app.name);
    const missing = await api("GET", `/v3/apps/${crypto.randomUUID()}`, { token: ADMIN });
    expect(missing.status).toBe(404);
    expect(missing.json.errors[0]).toEqual({ code: 10010, title: "CF-ResourceNotFound", detail: "App not found" });
    for (const odd of ["%ZZ", "%E0%A4%A", "a%00b", "x".repeat(2000)]) {
      expect((await api("GET", `/v3/apps/${odd}`, { token: ADMIN })).status).toBe(404);
      expect((await api("GET", `/v3/apps/${odd}/processes/%ZZ/stats`, { token: ADMIN })).status).toBe(404);
    }
  });

  it("renames, accepts the docker lifecycle, and refuses a taken name or another lifecycle", async () => {
    const app = await makeApp(space.guid);
    const other = await makeApp(space.guid);
    const renamed = unique("renamed");
    const ok = await api("PATCH", `/v3/apps/${app.guid}`, { token: dev.token, body: { name: renamed, lifecycle: { type: "docker", data: {} } } });
    expect(ok.status).toBe(200);
    expect(ok.json.name).toBe(renamed);
    const taken = await api("PATCH", `/v3/apps/${app.guid}`, { token: dev.token, body: { name: other.name } });
    expect(taken.status).toBe(422);
    expect(taken.json.errors[0].detail).toBe(`App with the name '${other.name}' already exists.`);
    const lifecycle = await api("PATCH", `/v3/apps/${app.guid}`, { token: dev.token, body: { lifecycle: { type: "buildpack", data: {} } } });
    expect(lifecycle.status).toBe(422);
    const state = await api("PATCH", `/v3/apps/${app.guid}`, { token: dev.token, body: { state: "STARTED" } });
    expect(state.status).toBe(422);
    expect(state.json.errors[0].detail).toContain("'state'");
  });

  it("takes the empty metadata cf rename sends; refuses labels, which Berth does not keep", async () => {
    const app = await makeApp(space.guid);
    const renamed = unique("renamed");
    const ok = await api("PATCH", `/v3/apps/${app.guid}`, { token: dev.token, body: { name: renamed, metadata: {} } });
    expect(ok.status).toBe(200);
    expect(ok.json.name).toBe(renamed);
    const labels = await api("PATCH", `/v3/apps/${app.guid}`, { token: dev.token, body: { metadata: { labels: { tier: "web" } } } });
    expect(labels.status).toBe(422);
    expect(labels.json.errors[0].detail).toContain("Berth keeps no labels");
  });

  it("deletes an app with everything under it and bumps the cells and route table", async () => {
    const app = await makeStartableApp(space.guid);
    const cellGuid = crypto.randomUUID();
    await db().insert(schema.cells).values({ guid: cellGuid, name: unique("cell"), zone: "z1", address: "10.0.0.9", tokenHash: unique("h"), capacity: { memory_mb: 1, disk_mb: 1, containers: 1 }, state: "ACTIVE" });
    await db().insert(schema.instances).values({ instanceGuid: crypto.randomUUID(), processGuid: app.guid, appGuid: app.guid, index: 0, processVersion: "v", spec: {}, cellGuid, state: "RUNNING", since: 0 });
    const pkg = await api("POST", "/v3/packages", { token: ADMIN, body: { type: "docker", relationships: { app: { data: { guid: app.guid } } }, data: { image: "busybox" } } });
    expect(pkg.status).toBe(201);
    const route = await api("POST", "/v3/routes", { token: ADMIN, body: { host: unique("del"), relationships: { space: { data: { guid: space.guid } } } } });
    await api("POST", `/v3/routes/${route.json.guid}/destinations`, { token: ADMIN, body: { destinations: [{ app: { guid: app.guid } }] } });
    const [counterBefore] = await db().select().from(schema.counters).where(eq(schema.counters.name, "routes_table"));
    // Mapping the route woke the scheduler, which may have touched the cell already.
    const [cellBefore] = await db().select().from(schema.cells).where(eq(schema.cells.guid, cellGuid));

    const res = await api("DELETE", `/v3/apps/${app.guid}`, { token: dev.token });
    expect(res.status).toBe(202);
    expect((await api("GET", `/v3/apps/${app.guid}`, { token: ADMIN })).status).toBe(404);
    expect((await api("GET", `/v3/processes/${app.guid}`, { token: ADMIN })).status).toBe(404);
    expect((await api("GET", `/v3/packages/${pkg.json.guid}`, { token: ADMIN })).status).toBe(404);
    expect(await db().select().from(schema.instances).where(eq(schema.instances.appGuid, app.guid))).toEqual([]);
    expect(await db().select().from(schema.droplets).where(eq(schema.droplets.appGuid, app.guid))).toEqual([]);
    expect((await api("GET", `/v3/routes/${route.json.guid}/destinations`, { token: ADMIN })).json.destinations).toEqual([]);
    const [cell] = await db().select().from(schema.cells).where(eq(schema.cells.guid, cellGuid));
    expect(cell!.desiredVersion).toBe(cellBefore!.desiredVersion + 1);
    const [counterAfter] = await db().select().from(schema.counters).where(eq(schema.counters.name, "routes_table"));
    expect(counterAfter!.value).toBeGreaterThan(counterBefore!.value);
    expect((await api("DELETE", `/v3/apps/${app.guid}`, { token: ADMIN })).status).toBe(404);
  });
});

describe("actions", () => {
  it("start needs a current droplet, as CF", async () => {
    const app = await makeApp(space.guid);
    for (const action of ["start", "restart"]) {
      const res = await api("POST", `/v3/apps/${app.guid}/actions/${action}`, { token: dev.token });
      expect(res.status).toBe(422);
      expect(res.json.errors[0].detail).toBe("Assign a droplet before starting this app.");
    }
  });

  it("start sets STARTED and a new process version; starting again keeps it; restart replaces it; stop stops", async () => {
    const app = await makeStartableApp(space.guid);
    const v0 = (await api("GET", `/v3/processes/${app.guid}`, { token: ADMIN })).json.version;
    const started = await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: dev.token });
    expect(started.status).toBe(200);
    expect(started.json.state).toBe("STARTED");
    const v1 = (await api("GET", `/v3/processes/${app.guid}`, { token: ADMIN })).json.version;
    expect(v1).not.toBe(v0);
    await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: dev.token });
    expect((await api("GET", `/v3/processes/${app.guid}`, { token: ADMIN })).json.version).toBe(v1);
    const restarted = await api("POST", `/v3/apps/${app.guid}/actions/restart`, { token: dev.token });
    expect(restarted.json.state).toBe("STARTED");
    const v2 = (await api("GET", `/v3/processes/${app.guid}`, { token: ADMIN })).json.version;
    expect(v2).not.toBe(v1);
    const stopped = await api("POST", `/v3/apps/${app.guid}/actions/stop`, { token: dev.token });
    expect(stopped.json.state).toBe("STOPPED");
    expect((await api("GET", `/v3/processes/${app.guid}`, { token: ADMIN })).json.version).toBe(v2);
    const events = await db().select().from(schema.auditEvents).where(eq(schema.auditEvents.targetGuid, app.guid));
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["audit.app.start", "audit.app.restart", "audit.app.stop", "audit.app.droplet.mapped"]));
  });

  it("answers 404 for actions on an unknown app", async () => {
    expect((await api("POST", `/v3/apps/${crypto.randomUUID()}/actions/stop`, { token: ADMIN })).status).toBe(404);
  });
});

describe("current droplet", () => {
  it("assigns a STAGED droplet of the app and shows the relationship", async () => {
    const app = await makeApp(space.guid);
    const droplet = await insertDroplet(app.guid);
    const res = await api("PATCH", `/v3/apps/${app.guid}/relationships/current_droplet`, { token: dev.token, body: { data: { guid: droplet } } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      data: { guid: droplet },
      links: {
        self: { href: `https://berth.test/v3/apps/${app.guid}/relationships/current_droplet` },
        related: { href: `https://berth.test/v3/apps/${app.guid}/droplets/current` },
      },
    });
    expect((await api("GET", `/v3/apps/${app.guid}`, { token: dev.token })).json.relationships.current_droplet.data.guid).toBe(droplet);
    expect((await api("GET", `/v3/apps/${app.guid}/relationships/current_droplet`, { token: dev.token })).json.data.guid).toBe(droplet);
    // The web process shows the droplet's detected command until one is set.
    expect((await api("GET", `/v3/processes/${app.guid}`, { token: dev.token })).json.command).toBe("/bin/app --serve");
  });

  it("refuses a droplet of another app, a droplet not STAGED, an unknown one, and a bad body", async () => {
    const app = await makeApp(space.guid);
    const other = await makeApp(space.guid);
    const foreign = await insertDroplet(other.guid);
    const staging = await insertDroplet(app.guid, { state: "STAGING" });
    for (const guid of [foreign, staging, crypto.randomUUID()]) {
      const res = await api("PATCH", `/v3/apps/${app.guid}/relationships/current_droplet`, { token: ADMIN, body: { data: { guid } } });
      expect(res.status).toBe(422);
      expect(res.json.errors[0].detail).toBe("Unable to assign current droplet. Ensure the droplet exists and belongs to this app.");
    }
    const bad = await api("PATCH", `/v3/apps/${app.guid}/relationships/current_droplet`, { token: ADMIN, body: { data: { guid: foreign, x: 1 } } });
    expect(bad.status).toBe(422);
    expect(bad.json.errors[0].detail).toContain("'data.x'");
  });
});

describe("nested lists", () => {
  it("lists an app's processes, packages and routes, and the process by type", async () => {
    const app = await makeApp(space.guid);
    const procs = await api("GET", `/v3/apps/${app.guid}/processes`, { token: dev.token });
    expect(procs.json.resources.map((p: any) => p.type)).toEqual(["web"]);
    const web = await api("GET", `/v3/apps/${app.guid}/processes/web`, { token: dev.token });
    expect(web.json.guid).toBe(app.guid);
    expect((await api("GET", `/v3/apps/${app.guid}/processes/worker`, { token: dev.token })).status).toBe(404);
    await api("POST", "/v3/packages", { token: dev.token, body: { type: "docker", relationships: { app: { data: { guid: app.guid } } }, data: { image: "nginx" } } });
    const pkgs = await api("GET", `/v3/apps/${app.guid}/packages`, { token: dev.token });
    expect(pkgs.json.resources.map((p: any) => p.data.image)).toEqual(["nginx"]);
    const host = unique("nested");
    const route = await api("POST", "/v3/routes", { token: dev.token, body: { host, relationships: { space: { data: { guid: space.guid } } } } });
    await api("POST", `/v3/routes/${route.json.guid}/destinations`, { token: dev.token, body: { destinations: [{ app: { guid: app.guid } }] } });
    const routes = await api("GET", `/v3/apps/${app.guid}/routes`, { token: dev.token });
    expect(routes.json.resources.map((r: any) => r.url)).toEqual([`${host}.apps.localhost`]);
    const env = await api("GET", `/v3/apps/${app.guid}/env`, { token: dev.token });
    expect(env.status).toBe(200);
    expect(env.json.application_env_json.VCAP_APPLICATION).toMatchObject({
      application_id: app.guid, application_name: app.name, space_id: space.guid, space_name: space.name,
      uris: [`${host}.apps.localhost`], limits: { mem: 1024, disk: 1024, fds: 16384 },
    });
    expect(env.json.environment_variables).toEqual({});
    expect((await api("GET", `/v3/apps/${app.guid}/packages?bogus=1`, { token: dev.token })).status).toBe(422);
  });
});

describe("GET /v3/apps/:guid/droplets/current", () => {
  it("renders the current docker droplet, and 404 when there is none", async () => {
    const app = await makeApp(space.guid);
    const none = await api("GET", `/v3/apps/${app.guid}/droplets/current`, { token: dev.token });
    expect(none.status).toBe(404);
    expect(none.json.errors[0].detail).toBe("Droplet not found");
    const droplet = await insertDroplet(app.guid);
    await api("PATCH", `/v3/apps/${app.guid}/relationships/current_droplet`, { token: dev.token, body: { data: { guid: droplet } } });
    const res = await api("GET", `/v3/apps/${app.guid}/droplets/current`, { token: dev.token });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      guid: droplet, state: "STAGED", error: null, lifecycle: { type: "docker", data: {} }, execution_metadata: "{}",
      process_types: { web: "/bin/app --serve" }, checksum: null, buildpacks: null, stack: null, image: "registry.test/app:1",
      relationships: { app: { data: { guid: app.guid } } },
      links: { assign_current_droplet: { href: `https://berth.test/v3/apps/${app.guid}/relationships/current_droplet`, method: "PATCH" } },
    });
  });
});
