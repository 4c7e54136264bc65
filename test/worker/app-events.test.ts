/**
 * The audit.app.* events Cloud Controller records for each app verb Berth
 * serves (types from CC's EventTypes, metadata as its AppEventRepository
 * writes it), read back through /v3/audit_events as `cf events` reads them.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { dockerSpaceWithDeveloper, makeApp, makeStartableApp } from "./app-fixtures";
import { api, unique } from "./support";

let space: { guid: string; name: string };
let dev: { guid: string; token: string };

beforeAll(async () => {
  ({ space, dev } = await dockerSpaceWithDeveloper());
});

const eventsOf = async (appGuid: string) =>
  (await api("GET", `/v3/audit_events?target_guids=${appGuid}&order_by=created_at&per_page=100`, { token: dev.token })).json.resources as {
    type: string; actor: { guid: string; type: string }; target: { guid: string; type: string; name: string }; data: Record<string, any>;
  }[];
const typesOf = async (appGuid: string) => (await eventsOf(appGuid)).map((e) => e.type);

describe("audit.app.* events for the verbs Berth serves", () => {
  it("create, update, env vars (an update with the values hidden), start, stop, restart, scale, delete-request", async () => {
    const app = await makeStartableApp(space.guid, dev.token);
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await api(method, path, { token: dev.token, body });
      expect(res.status, `${method} ${path}`).toBeLessThan(300);
    };
    await call("PATCH", `/v3/apps/${app.guid}`, { name: unique("renamed") });
    await call("PATCH", `/v3/apps/${app.guid}/environment_variables`, { var: { SECRET: "hunter2" } });
    await call("POST", `/v3/apps/${app.guid}/actions/start`);
    await call("POST", `/v3/apps/${app.guid}/actions/stop`);
    await call("POST", `/v3/apps/${app.guid}/actions/restart`);
    await call("POST", `/v3/apps/${app.guid}/processes/web/actions/scale`, { instances: 2 });
    await call("DELETE", `/v3/apps/${app.guid}`);
    const events = await eventsOf(app.guid);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining([
      "audit.app.create", "audit.app.update", "audit.app.start", "audit.app.stop", "audit.app.restart", "audit.app.process.scale", "audit.app.delete-request",
    ]));
    // CC has no environment_variables.update type: an env change is an app update whose values never reach the event.
    const envUpdate = events.find((e) => e.type === "audit.app.update" && e.data.request?.environment_variables !== undefined)!;
    expect(envUpdate.data).toEqual({ request: { environment_variables: "[PRIVATE DATA HIDDEN]" } });
    expect(JSON.stringify(events)).not.toContain("hunter2");
    expect(events.filter((e) => e.type.startsWith("audit.app.")).every((e) => e.actor.guid === dev.guid && e.target.guid === app.guid)).toBe(true);
  });

  it("map-route and unmap-route on the app, with CC's metadata; mapping an app already mapped records nothing", async () => {
    const app = await makeApp(space.guid, dev.token);
    const route = (await api("POST", "/v3/routes", { token: dev.token, body: { host: unique("ev"), path: "/api", relationships: { space: { data: { guid: space.guid } } } } })).json;
    const map = () => api("POST", `/v3/routes/${route.guid}/destinations`, { token: dev.token, body: { destinations: [{ app: { guid: app.guid } }] } });
    const dest = (await map()).json.destinations[0];
    await map();
    expect((await api("DELETE", `/v3/routes/${route.guid}/destinations/${dest.guid}`, { token: dev.token })).status).toBe(204);
    const mapping = (await eventsOf(app.guid)).filter((e) => e.type.endsWith("map-route"));
    const data = { route_guid: route.guid, app_port: null, route_mapping_guid: dest.guid, destination_guid: dest.guid, process_type: "web", weight: null, protocol: "http1" };
    expect(mapping.map((e) => [e.type, e.target.name, e.data])).toEqual([
      ["audit.app.map-route", app.name, data],
      ["audit.app.unmap-route", app.name, data],
    ]);
  });

  it("restage: a build of a package that was built before records audit.app.restage beside audit.app.build.create", async () => {
    const app = await makeApp(space.guid, dev.token);
    const pkg = (await api("POST", "/v3/packages", { token: dev.token, body: { type: "docker", relationships: { app: { data: { guid: app.guid } } }, data: { image: "registry.test/app:1" } } })).json;
    const build = () => api("POST", "/v3/builds", { token: dev.token, body: { package: { guid: pkg.guid } } });
    expect((await build()).status).toBe(201);
    expect(await typesOf(app.guid)).not.toContain("audit.app.restage");
    expect((await build()).status).toBe(201);
    const types = await typesOf(app.guid);
    expect(types.filter((t) => t === "audit.app.build.create")).toHaveLength(2);
    expect(types.filter((t) => t === "audit.app.restage")).toHaveLength(1);
  });
});
