/**
 * Every endpoint of apps, packages, processes and routes × every kind of caller:
 * admin and member developer succeed; a developer of another space gets CF's
 * 404 (or 422 for a relationship, or a list without the resource); cells and
 * routers get 403 CF-NotAuthorized; no token gets 401 CF-NotAuthenticated; and
 * every other CF role of the space or its organization gets what CC's role
 * matrix gives it: the endpoint's success where the role may do that, 403 where
 * it sees the space but may not, and the outsider's answer where it cannot see it.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { insertDroplet, makeApp, setDocker } from "./app-fixtures";
import { ADMIN, addDeveloper, addRole, api, createCell, createRouter, createSpace, createUser, unique } from "./support";

interface Fixture {
  space: string;
  app: string;
  droplet: string;
  pkg: string;
  route: string;
  dest: string;
}

type Outsider = 404 | 422 | "hidden";
type Need = "read" | "develop" | "operate" | "read_env";

/** CC's role matrix for a space, written out here on its own (not read from the code under test). */
const MAY: Record<string, Need[]> = {
  space_developer: ["read", "develop", "operate", "read_env"],
  space_supporter: ["read", "operate"],
  space_manager: ["read"],
  space_auditor: ["read"],
  organization_manager: ["read"],
  organization_user: [],
  organization_auditor: [],
  organization_billing_manager: [],
};

interface Endpoint {
  name: string;
  method: string;
  path: (f: Fixture) => string;
  body?: (f: Fixture) => unknown;
  ok: number;
  outsider: Outsider;
  /** What CC's matrix asks of the caller: see the space, develop in it, operate apps (start, stop, scale), or read env vars. */
  needs: Need;
  /** For lists: the fixture's resource guid an outsider must not see. */
  listed?: (f: Fixture) => string;
}

const ENDPOINTS: Endpoint[] = [
  { name: "create app", method: "POST", path: () => "/v3/apps", body: (f) => ({ name: unique("m"), relationships: { space: { data: { guid: f.space } } }, lifecycle: { type: "docker", data: {} } }), ok: 201, outsider: 422, needs: "develop" },
  { name: "list apps", method: "GET", path: () => "/v3/apps?per_page=5000", ok: 200, outsider: "hidden", listed: (f) => f.app, needs: "read" },
  { name: "get app", method: "GET", path: (f) => `/v3/apps/${f.app}`, ok: 200, outsider: 404, needs: "read" },
  { name: "update app", method: "PATCH", path: (f) => `/v3/apps/${f.app}`, body: () => ({ name: unique("r") }), ok: 200, outsider: 404, needs: "develop" },
  { name: "get env vars", method: "GET", path: (f) => `/v3/apps/${f.app}/environment_variables`, ok: 200, outsider: 404, needs: "read_env" },
  { name: "patch env vars", method: "PATCH", path: (f) => `/v3/apps/${f.app}/environment_variables`, body: () => ({ var: { A: "1" } }), ok: 200, outsider: 404, needs: "develop" },
  { name: "get env", method: "GET", path: (f) => `/v3/apps/${f.app}/env`, ok: 200, outsider: 404, needs: "read_env" },
  { name: "set current droplet", method: "PATCH", path: (f) => `/v3/apps/${f.app}/relationships/current_droplet`, body: (f) => ({ data: { guid: f.droplet } }), ok: 200, outsider: 404, needs: "develop" },
  { name: "get current droplet relationship", method: "GET", path: (f) => `/v3/apps/${f.app}/relationships/current_droplet`, ok: 200, outsider: 404, needs: "read" },
  { name: "get current droplet", method: "GET", path: (f) => `/v3/apps/${f.app}/droplets/current`, ok: 200, outsider: 404, needs: "read" },
  { name: "start", method: "POST", path: (f) => `/v3/apps/${f.app}/actions/start`, ok: 200, outsider: 404, needs: "operate" },
  { name: "restart", method: "POST", path: (f) => `/v3/apps/${f.app}/actions/restart`, ok: 200, outsider: 404, needs: "operate" },
  { name: "stop", method: "POST", path: (f) => `/v3/apps/${f.app}/actions/stop`, ok: 200, outsider: 404, needs: "operate" },
  { name: "list app processes", method: "GET", path: (f) => `/v3/apps/${f.app}/processes`, ok: 200, outsider: 404, needs: "read" },
  { name: "get app process", method: "GET", path: (f) => `/v3/apps/${f.app}/processes/web`, ok: 200, outsider: 404, needs: "read" },
  { name: "patch app process", method: "PATCH", path: (f) => `/v3/apps/${f.app}/processes/web`, body: () => ({ command: "x" }), ok: 200, outsider: 404, needs: "operate" },
  { name: "scale app process", method: "POST", path: (f) => `/v3/apps/${f.app}/processes/web/actions/scale`, body: () => ({ instances: 2 }), ok: 202, outsider: 404, needs: "operate" },
  { name: "app process stats", method: "GET", path: (f) => `/v3/apps/${f.app}/processes/web/stats`, ok: 200, outsider: 404, needs: "read" },
  { name: "list app packages", method: "GET", path: (f) => `/v3/apps/${f.app}/packages`, ok: 200, outsider: 404, needs: "read" },
  { name: "list app routes", method: "GET", path: (f) => `/v3/apps/${f.app}/routes`, ok: 200, outsider: 404, needs: "read" },
  { name: "create package", method: "POST", path: () => "/v3/packages", body: (f) => ({ type: "docker", relationships: { app: { data: { guid: f.app } } }, data: { image: "busybox" } }), ok: 201, outsider: 422, needs: "develop" },
  { name: "list packages", method: "GET", path: () => "/v3/packages?per_page=5000", ok: 200, outsider: "hidden", listed: (f) => f.pkg, needs: "read" },
  { name: "get package", method: "GET", path: (f) => `/v3/packages/${f.pkg}`, ok: 200, outsider: 404, needs: "read" },
  { name: "list processes", method: "GET", path: () => "/v3/processes?per_page=5000", ok: 200, outsider: "hidden", listed: (f) => f.app, needs: "read" },
  { name: "get process", method: "GET", path: (f) => `/v3/processes/${f.app}`, ok: 200, outsider: 404, needs: "read" },
  { name: "patch process", method: "PATCH", path: (f) => `/v3/processes/${f.app}`, body: () => ({ user: "1000" }), ok: 200, outsider: 404, needs: "operate" },
  { name: "scale process", method: "POST", path: (f) => `/v3/processes/${f.app}/actions/scale`, body: () => ({ memory_in_mb: 256 }), ok: 202, outsider: 404, needs: "operate" },
  { name: "process stats", method: "GET", path: (f) => `/v3/processes/${f.app}/stats`, ok: 200, outsider: 404, needs: "read" },
  { name: "create route", method: "POST", path: () => "/v3/routes", body: (f) => ({ host: unique("rm"), relationships: { space: { data: { guid: f.space } } } }), ok: 201, outsider: 422, needs: "develop" },
  { name: "list routes", method: "GET", path: () => "/v3/routes?per_page=5000", ok: 200, outsider: "hidden", listed: (f) => f.route, needs: "read" },
  { name: "get route", method: "GET", path: (f) => `/v3/routes/${f.route}`, ok: 200, outsider: 404, needs: "read" },
  { name: "list destinations", method: "GET", path: (f) => `/v3/routes/${f.route}/destinations`, ok: 200, outsider: 404, needs: "read" },
  { name: "add destinations", method: "POST", path: (f) => `/v3/routes/${f.route}/destinations`, body: (f) => ({ destinations: [{ app: { guid: f.app }, port: 8081 }] }), ok: 200, outsider: 404, needs: "develop" },
  // Destructive ones last: they consume the fixture.
  { name: "remove destination", method: "DELETE", path: (f) => `/v3/routes/${f.route}/destinations/${f.dest}`, ok: 204, outsider: 404, needs: "develop" },
  { name: "delete route", method: "DELETE", path: (f) => `/v3/routes/${f.route}`, ok: 202, outsider: 404, needs: "develop" },
  { name: "delete app", method: "DELETE", path: (f) => `/v3/apps/${f.app}`, ok: 202, outsider: 404, needs: "develop" },
];

let spaceGuid: string;
const tokens: Record<string, string | undefined> = {};

async function fixture(): Promise<Fixture> {
  const app = await makeApp(spaceGuid);
  const droplet = await insertDroplet(app.guid);
  await api("PATCH", `/v3/apps/${app.guid}/relationships/current_droplet`, { token: ADMIN, body: { data: { guid: droplet } } });
  const pkg = await api("POST", "/v3/packages", { token: ADMIN, body: { type: "docker", relationships: { app: { data: { guid: app.guid } } }, data: { image: "busybox" } } });
  const route = await api("POST", "/v3/routes", { token: ADMIN, body: { host: unique("fx"), relationships: { space: { data: { guid: spaceGuid } } } } });
  const dests = await api("POST", `/v3/routes/${route.json.guid}/destinations`, { token: ADMIN, body: { destinations: [{ app: { guid: app.guid } }] } });
  return { space: spaceGuid, app: app.guid, droplet, pkg: pkg.json.guid, route: route.json.guid, dest: dests.json.destinations[0].guid };
}

const call = (e: Endpoint, f: Fixture, token: string | undefined) => api(e.method, e.path(f), { token, body: e.body?.(f) });

beforeAll(async () => {
  await setDocker(true);
  spaceGuid = (await createSpace()).guid;
  const member = await createUser();
  await addDeveloper(member.guid, spaceGuid);
  const other = await createUser();
  await addDeveloper(other.guid, (await createSpace()).guid);
  tokens.admin = ADMIN;
  tokens.member = member.token;
  tokens.other = other.token;
  tokens.cell = (await createCell()).token;
  tokens.router = (await createRouter()).token;
  tokens.anonymous = undefined;
  for (const role of Object.keys(MAY).filter((r) => r !== "space_developer")) {
    const u = await createUser();
    if (role !== "organization_user") await addRole(u.guid, "organization_user");
    await addRole(u.guid, role, role.startsWith("space_") ? spaceGuid : null);
    tokens[role] = u.token;
  }
});

// Each case makes ~40 requests (and wakes the real scheduler): more than the default 5 s on a busy machine.
describe("role matrix", { timeout: 60_000 }, () => {
  it.each(["admin", "member"])("%s: every endpoint succeeds", async (who) => {
    const f = await fixture();
    for (const e of ENDPOINTS) {
      const res = await call(e, f, tokens[who]);
      expect({ endpoint: e.name, status: res.status, detail: res.status === e.ok ? undefined : res.json?.errors?.[0]?.detail }).toEqual({ endpoint: e.name, status: e.ok, detail: undefined });
      if (e.listed) expect(res.json.resources.map((r: { guid: string }) => r.guid)).toContain(e.listed(f));
    }
  });

  it("developer of another space: 404, 422 for relationships, and lists without the resource", async () => {
    const f = await fixture();
    for (const e of ENDPOINTS) {
      const res = await call(e, f, tokens.other);
      const expected = e.outsider === "hidden" ? 200 : e.outsider;
      expect({ endpoint: e.name, status: res.status }).toEqual({ endpoint: e.name, status: expected });
      if (e.outsider === 404) expect(res.json.errors[0].title).toBe("CF-ResourceNotFound");
      if (e.listed) expect(res.json.resources.map((r: { guid: string }) => r.guid)).not.toContain(e.listed(f));
    }
    // Nothing was changed by the attempts.
    expect((await api("GET", `/v3/apps/${f.app}`, { token: ADMIN })).status).toBe(200);
    expect((await api("GET", `/v3/routes/${f.route}/destinations`, { token: ADMIN })).json.destinations).toHaveLength(1);
  });

  it.each([
    ["cell", 403, "CF-NotAuthorized"],
    ["router", 403, "CF-NotAuthorized"],
    ["anonymous", 401, "CF-NotAuthenticated"],
  ])("%s: refused everywhere", async (who, status, title) => {
    const f = await fixture();
    for (const e of ENDPOINTS) {
      const res = await call(e, f, tokens[who]);
      expect({ endpoint: e.name, status: res.status, title: res.json?.errors?.[0]?.title }).toEqual({ endpoint: e.name, status, title });
    }
    expect((await api("GET", `/v3/apps/${f.app}`, { token: ADMIN })).json.state).toBe("STOPPED");
  });

  it.each(Object.keys(MAY).filter((r) => r !== "space_developer"))("%s: CC's matrix, endpoint by endpoint", async (role) => {
    const f = await fixture();
    const may = MAY[role]!;
    for (const e of ENDPOINTS) {
      const res = await call(e, f, tokens[role]);
      const expected = !may.includes("read") ? (e.outsider === "hidden" ? 200 : e.outsider) : may.includes(e.needs) ? e.ok : 403;
      expect({ endpoint: e.name, status: res.status }).toEqual({ endpoint: e.name, status: expected });
      if (expected === 403) expect(res.json.errors[0].title).toBe("CF-NotAuthorized");
      if (e.listed) {
        const seen = res.json.resources.map((r: { guid: string }) => r.guid);
        if (may.includes("read")) expect(seen, e.name).toContain(e.listed(f));
        else expect(seen, e.name).not.toContain(e.listed(f));
      }
    }
  });

  it("a malformed or unknown token is 401 CF-InvalidAuthToken", async () => {
    const res = await api("GET", "/v3/apps", { token: "bu_not-a-real-token" });
    expect(res.status).toBe(401);
    expect(res.json.errors[0].title).toBe("CF-InvalidAuthToken");
  });
});
