import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import * as schema from "../../worker/db/schema";
import { appsDomainGuid } from "../../worker/presenters/routes";
import { dockerSpaceWithDeveloper, makeApp } from "./app-fixtures";
import { ADMIN, api, createSpace, createUser, db, unique } from "./support";

let space: { guid: string; name: string };
let dev: { guid: string; token: string };

beforeAll(async () => {
  ({ space, dev } = await dockerSpaceWithDeveloper());
});

async function tableVersion(): Promise<number> {
  const [row] = await db().select().from(schema.counters).where(eq(schema.counters.name, "routes_table"));
  return row?.value ?? 0;
}

const createRoute = (host: string, spaceGuid = space.guid, token = dev.token, extra: Record<string, unknown> = {}) =>
  api("POST", "/v3/routes", { token, body: { host, relationships: { space: { data: { guid: spaceGuid } }, ...extra } } });

describe("POST /v3/routes", () => {
  it("creates a route under APPS_DOMAIN in CC's shape and bumps the route table", async () => {
    const before = await tableVersion();
    const host = unique("web");
    const domainGuid = await appsDomainGuid("apps.localhost");
    const res = await createRoute(host, space.guid, dev.token, { domain: { data: { guid: domainGuid } } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      protocol: "http", host, path: "", port: null, url: `${host}.apps.localhost`, destinations: [], options: {},
      relationships: { space: { data: { guid: space.guid } }, domain: { data: { guid: domainGuid } } },
      links: {
        self: { href: `https://berth.test/v3/routes/${res.json.guid}` },
        destinations: { href: `https://berth.test/v3/routes/${res.json.guid}/destinations` },
        space: { href: `https://berth.test/v3/spaces/${space.guid}` },
      },
    });
    expect(domainGuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await tableVersion()).toBe(before + 1);
  });

  it("lower-cases the host and refuses a taken one anywhere with CF's 422", async () => {
    const host = unique("taken");
    expect((await createRoute(host.toUpperCase())).json.host).toBe(host);
    const before = await tableVersion();
    const other = await createSpace();
    const res = await createRoute(host, other.guid, ADMIN);
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toBe(`Route already exists with host '${host}' for domain 'apps.localhost'.`);
    // No event for a route that was not made.
    const events = await db().select().from(schema.auditEvents).where(eq(schema.auditEvents.type, "audit.route.create"));
    expect(events.filter((e) => e.targetName === `${host}.apps.localhost`)).toHaveLength(1);
    expect(await tableVersion()).toBeGreaterThanOrEqual(before);
  });

  it.each([
    ["a leading hyphen", "-web"],
    ["a trailing hyphen", "web-"],
    ["a dot", "a.b"],
    ["an underscore", "my_app"],
    ["an empty host", ""],
    ["64 characters", "a".repeat(64)],
    ["a space", "my app"],
  ])("refuses a host with %s", async (_what, host) => {
    const res = await createRoute(host);
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toContain("host");
  });

  it("accepts a 63-character label", async () => {
    expect((await createRoute(`a${crypto.randomUUID().replaceAll("-", "")}`.padEnd(63, "b"))).status).toBe(201);
  });

  it("refuses another domain, a space the developer is not in, and unknown fields", async () => {
    const badDomain = await createRoute(unique("d"), space.guid, dev.token, { domain: { data: { guid: crypto.randomUUID() } } });
    expect(badDomain.status).toBe(422);
    expect(badDomain.json.errors[0].detail).toBe("Invalid domain. Ensure that the domain exists and you have access to it.");
    const outside = await createSpace();
    const noSpace = await createRoute(unique("s"), outside.guid);
    expect(noSpace.status).toBe(422);
    expect(noSpace.json.errors[0].detail).toBe("Invalid space. Ensure that the space exists and you have access to it.");
    const extra = await api("POST", "/v3/routes", { token: dev.token, body: { host: unique("x"), port: 8080, relationships: { space: { data: { guid: space.guid } } } } });
    expect(extra.status).toBe(422);
    expect(extra.json.errors[0].detail).toContain("'port'");
  });
});

const createPathRoute = (host: string, path: string) =>
  api("POST", "/v3/routes", { token: dev.token, body: { host, path, relationships: { space: { data: { guid: space.guid } } } } });

describe("route paths", () => {
  it("a tenant who adds a path to another space's host (to take its /api traffic) gets CC's 422, in either order, nothing written", async () => {
    const host = unique("victim");
    expect((await createRoute(host)).status).toBe(201);
    const attacker = await dockerSpaceWithDeveloper();
    const reserved = "Routes for this host and domain have been reserved for another space.";
    for (const path of ["/api", "/API/"]) {
      const hijack = await api("POST", "/v3/routes", { token: attacker.dev.token, body: { host, path, relationships: { space: { data: { guid: attacker.space.guid } } } } });
      expect(hijack.status).toBe(422);
      expect(hijack.json.errors[0].detail).toBe(reserved);
    }
    // The other way round: a path route first, then the host's path-less route from another space.
    const pathFirst = unique("pathfirst");
    expect((await createPathRoute(pathFirst, "/api")).status).toBe(201);
    const bare = await api("POST", "/v3/routes", { token: attacker.dev.token, body: { host: pathFirst, relationships: { space: { data: { guid: attacker.space.guid } } } } });
    expect(bare.json.errors[0].detail).toBe(reserved);
    const rows = await db().select().from(schema.routes).where(eq(schema.routes.spaceGuid, attacker.space.guid));
    expect(rows).toEqual([]);
    // The owner's space adds paths to its own host as before.
    expect((await createPathRoute(host, "/api")).status).toBe(201);
  });

  it("a host takes routes with different paths; the same host, path and domain twice is CC's 422; the table carries the paths", async () => {
    const host = unique("paths");
    const bare = await createRoute(host);
    const api1 = await createPathRoute(host, "/api");
    expect(api1.status).toBe(201);
    expect(api1.json).toMatchObject({ host, path: "/api", url: `${host}.apps.localhost/api` });
    expect((await createPathRoute(host, "/api/v2")).status).toBe(201);
    const again = await createPathRoute(host, "/api");
    expect(again.status).toBe(422);
    expect(again.json.errors[0]).toEqual({ code: 10008, title: "CF-UnprocessableEntity", detail: `Route already exists with host '${host}' and path '/api' for domain 'apps.localhost'.` });
    // The cf CLI looks a route up by host, domain and path ("" for none).
    const byPath = async (paths: string) => (await api("GET", `/v3/routes?hosts=${host}&paths=${paths}`, { token: dev.token })).json.resources.map((r: any) => r.guid);
    expect(await byPath("/api")).toEqual([api1.json.guid]);
    expect(await byPath("")).toEqual([bare.json.guid]);
    expect(await byPath("/api,")).toEqual([bare.json.guid, api1.json.guid]);
    const table = (await api("GET", "/v3/routes/table", { token: ADMIN })).json;
    const entries = table.routes.filter((r: { host: string }) => r.host === `${host}.apps.localhost`);
    expect(entries).toEqual([
      { host: `${host}.apps.localhost`, instances: [] },
      { host: `${host}.apps.localhost`, path: "/api", instances: [] },
      { host: `${host}.apps.localhost`, path: "/api/v2", instances: [] },
    ]);
    const event = await db().select().from(schema.auditEvents).where(eq(schema.auditEvents.targetGuid, api1.json.guid));
    expect(event.map((e) => [e.type, e.targetName])).toEqual([["audit.route.create", `${host}.apps.localhost/api`]]);
  });

  it("a path the routers match as one already taken (/API/ beside /api) is CC's 422, nothing written", async () => {
    const host = unique("samepath");
    expect((await createPathRoute(host, "/api")).status).toBe(201);
    for (const path of ["/API", "/api/", "/Api/"]) {
      const res = await createPathRoute(host, path);
      expect(res.status).toBe(422);
      expect(res.json.errors[0].detail).toBe(`Route already exists with host '${host}' and path '${path}' for domain 'apps.localhost'.`);
    }
    expect((await createPathRoute(host, "/api/v2/")).status).toBe(201);
    expect((await createPathRoute(host, "/API/V2")).status).toBe(422);
    expect((await db().select().from(schema.routes).where(eq(schema.routes.host, host))).map((r) => r.path)).toEqual(["/api", "/api/v2/"]);
  });

  it.each([
    ["no leading slash", "api", "Path must begin with /"],
    ["just /", "/", "Path cannot be exactly /"],
    ["a ?", "/a?b=1", "Path cannot contain ?"],
    ["no slash and a ?", "a?", "Path must begin with /, Path cannot contain ?"],
    ["129 characters", `/${"a".repeat(128)}`, "Path is too long (maximum is 128 characters)"],
    ["a space", "/a b", "Path is invalid."],
    ["a fragment", "/a#b", "Path is invalid."],
    ["slashes alone", "//", "Path is invalid."],
  ])("refuses a path with %s in CC's words, nothing written", async (_what, path, detail) => {
    const host = unique("badpath");
    const before = await tableVersion();
    const res = await createPathRoute(host, path);
    expect(res.status).toBe(422);
    expect(res.json.errors[0]).toEqual({ code: 10008, title: "CF-UnprocessableEntity", detail });
    expect(await db().select().from(schema.routes).where(eq(schema.routes.host, host))).toEqual([]);
    expect(await tableVersion()).toBe(before);
  });

  it("accepts a 128-character path", async () => {
    expect((await createPathRoute(unique("long"), `/${"a".repeat(127)}`)).status).toBe(201);
  });
});

describe("GET and DELETE /v3/routes", () => {
  it("lists with filters, hides other spaces, gets one and deletes it", async () => {
    const host = unique("list");
    const route = (await createRoute(host)).json;
    const app = await makeApp(space.guid, dev.token);
    await api("POST", `/v3/routes/${route.guid}/destinations`, { token: dev.token, body: { destinations: [{ app: { guid: app.guid } }] } });
    expect((await api("GET", `/v3/routes?hosts=${host.toUpperCase()}`, { token: dev.token })).json.resources.map((r: any) => r.guid)).toEqual([route.guid]);
    expect((await api("GET", `/v3/routes?app_guids=${app.guid}`, { token: dev.token })).json.resources.map((r: any) => r.guid)).toEqual([route.guid]);
    expect((await api("GET", `/v3/routes?space_guids=${space.guid}&per_page=5000`, { token: dev.token })).json.resources.map((r: any) => r.guid)).toContain(route.guid);
    const outsider = await createUser();
    expect((await api("GET", `/v3/routes?hosts=${host}`, { token: outsider.token })).json.resources).toEqual([]);
    expect((await api("GET", `/v3/routes/${route.guid}`, { token: outsider.token })).status).toBe(404);
    expect((await api("GET", `/v3/routes/${route.guid}`, { token: dev.token })).json.destinations).toHaveLength(1);
    expect((await api("GET", "/v3/routes?host=x", { token: dev.token })).status).toBe(422);

    const before = await tableVersion();
    expect((await api("DELETE", `/v3/routes/${route.guid}`, { token: dev.token })).status).toBe(202);
    expect(await tableVersion()).toBe(before + 1);
    const gone = await api("GET", `/v3/routes/${route.guid}`, { token: dev.token });
    expect(gone.status).toBe(404);
    expect(gone.json.errors[0].detail).toBe("Route not found");
    expect(await db().select().from(schema.routeDestinations).where(eq(schema.routeDestinations.routeGuid, route.guid))).toEqual([]);
    expect((await api("DELETE", `/v3/routes/${route.guid}`, { token: dev.token })).status).toBe(404);
  });
});

describe("destinations", () => {
  it("adds, lists and removes destinations, bumping the route table each time", async () => {
    const route = (await createRoute(unique("dest"))).json;
    const a = await makeApp(space.guid, dev.token);
    const b = await makeApp(space.guid, dev.token);
    let before = await tableVersion();
    const added = await api("POST", `/v3/routes/${route.guid}/destinations`, {
      token: dev.token, body: { destinations: [{ app: { guid: a.guid, process: { type: "web" } } }, { app: { guid: b.guid }, port: 9000, protocol: "http1" }] },
    });
    expect(added.status).toBe(200);
    expect(added.json.destinations).toEqual([
      { guid: expect.any(String), app: { guid: a.guid, process: { type: "web" } }, weight: null, port: null, protocol: "http1" },
      { guid: expect.any(String), app: { guid: b.guid, process: { type: "web" } }, weight: null, port: 9000, protocol: "http1" },
    ]);
    expect(added.json.links).toEqual({
      self: { href: `https://berth.test/v3/routes/${route.guid}/destinations` },
      route: { href: `https://berth.test/v3/routes/${route.guid}` },
    });
    expect(await tableVersion()).toBe(before + 1);
    // Mapping the same app again changes nothing.
    const again = await api("POST", `/v3/routes/${route.guid}/destinations`, { token: dev.token, body: { destinations: [{ app: { guid: a.guid } }] } });
    expect(again.json.destinations).toHaveLength(2);
    const listed = await api("GET", `/v3/routes/${route.guid}/destinations`, { token: dev.token });
    expect(listed.json.destinations).toEqual(added.json.destinations);

    before = await tableVersion();
    const dest = added.json.destinations[0].guid;
    expect((await api("DELETE", `/v3/routes/${route.guid}/destinations/${dest}`, { token: dev.token })).status).toBe(204);
    expect(await tableVersion()).toBe(before + 1);
    expect((await api("GET", `/v3/routes/${route.guid}/destinations`, { token: dev.token })).json.destinations.map((d: any) => d.app.guid)).toEqual([b.guid]);
    const twice = await api("DELETE", `/v3/routes/${route.guid}/destinations/${dest}`, { token: dev.token });
    expect(twice.status).toBe(422);
    expect(twice.json.errors[0].detail).toBe("Unable to unmap route from destination. Ensure the route has a destination with this guid.");
  });

  it("refuses apps that do not exist, are out of reach, or live in another space", async () => {
    const route = (await createRoute(unique("bad"))).json;
    const missing = crypto.randomUUID();
    const res = await api("POST", `/v3/routes/${route.guid}/destinations`, { token: dev.token, body: { destinations: [{ app: { guid: missing } }] } });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toBe(`App(s) with guid(s) "${missing}" do not exist or you do not have access.`);
    const elsewhere = await makeApp((await createSpace()).guid);
    const hidden = await api("POST", `/v3/routes/${route.guid}/destinations`, { token: dev.token, body: { destinations: [{ app: { guid: elsewhere.guid } }] } });
    expect(hidden.status).toBe(422);
    const cross = await api("POST", `/v3/routes/${route.guid}/destinations`, { token: ADMIN, body: { destinations: [{ app: { guid: elsewhere.guid } }] } });
    expect(cross.status).toBe(422);
    expect(cross.json.errors[0].detail).toBe("Routes destinations must be in either the route's space or the route's shared spaces");
  });

  it.each([
    ["no destinations", { destinations: [] }, "destinations"],
    ["a worker process", { destinations: [{ app: { guid: "g", process: { type: "worker" } } }] }, "destinations.0.app.process.type: must be web"],
    ["a port out of range", { destinations: [{ app: { guid: "g" }, port: 70000 }] }, "destinations.0.port"],
    ["http2", { destinations: [{ app: { guid: "g" }, protocol: "http2" }] }, "destinations.0.protocol"],
    ["a weight", { destinations: [{ app: { guid: "g" }, weight: 10 }] }, "Unknown field(s): 'destinations.0.weight'"],
  ])("refuses %s with 422", async (_what, body, detail) => {
    const route = (await createRoute(unique("v"))).json;
    const res = await api("POST", `/v3/routes/${route.guid}/destinations`, { token: dev.token, body });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toContain(detail);
  });
});
