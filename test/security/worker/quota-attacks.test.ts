/**
 * One tenant cannot take what the platform has (issue 15, item 5), inside
 * workerd: quotas in CC's shapes (/v3/organization_quotas, /v3/space_quotas),
 * a default organization quota so a fresh deployment is never unlimited, and
 * a space developer trying to pass them by scaling, starting and making
 * routes gets CC's 422 naming the limit with nothing written. The same
 * through `berth push` and `berth scale`: test/e2e/quotas.test.ts.
 */
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import * as schema from "../../../worker/db/schema";
import { makeStartableApp, setDocker } from "../../worker/app-fixtures";
import { ADMIN, addDeveloper, api, createSpace, createUser, db, unique } from "../../worker/support";

let dev: { guid: string; token: string };

beforeAll(async () => {
  await setDocker(true);
  dev = await createUser();
});

/** A space of its own organization (so usage elsewhere in this file does not count), with `dev` as its developer. */
async function freshSpace(orgQuotaGuid: string | null = null) {
  const orgGuid = crypto.randomUUID();
  await db().insert(schema.organizations).values({ guid: orgGuid, name: unique("org"), quotaGuid: orgQuotaGuid });
  const space = await createSpace(unique("space"), orgGuid);
  await addDeveloper(dev.guid, space.guid, orgGuid);
  return { ...space, orgGuid };
}

async function spaceQuota(orgGuid: string, spaceGuid: string, apps: Record<string, number>, routes?: number) {
  const res = await api("POST", "/v3/space_quotas", { token: ADMIN, body: {
    name: unique("sq"), apps, ...(routes === undefined ? {} : { routes: { total_routes: routes } }),
    relationships: { organization: { data: { guid: orgGuid } }, spaces: { data: [{ guid: spaceGuid }] } },
  } });
  expect(res.status, JSON.stringify(res.json)).toBe(201);
  return res.json as { guid: string };
}

const scale = (appGuid: string, body: Record<string, number>) => api("POST", `/v3/apps/${appGuid}/processes/web/actions/scale`, { token: dev.token, body });
const web = async (appGuid: string) => (await api("GET", `/v3/apps/${appGuid}/processes/web`, { token: dev.token })).json as { instances: number; memory_in_mb: number };

function refused(res: { status: number; json: any }, detail: RegExp) {
  expect(res.status, JSON.stringify(res.json)).toBe(422);
  expect(res.json.errors[0]).toMatchObject({ code: 10008, title: "CF-UnprocessableEntity" });
  expect(res.json.errors[0].detail).toMatch(detail);
}

describe("quota definitions", () => {
  it("a fresh deployment has CC's default organization quota, applied to every organization without one", async () => {
    const { orgGuid } = await freshSpace();
    const list = await api("GET", "/v3/organization_quotas", { token: dev.token });
    expect(list.status).toBe(200);
    const def = list.json.resources.find((q: { name: string }) => q.name === "default");
    expect(def).toMatchObject({ apps: { total_memory_in_mb: 10240, total_instances: 100, per_process_memory_in_mb: null }, routes: { total_routes: 1000 } });
    expect(def.relationships.organizations.data).toContainEqual({ guid: orgGuid });
    expect((await api("DELETE", `/v3/organization_quotas/${def.guid}`, { token: ADMIN })).status).toBe(422);
  });

  it("only admins define, change and apply quotas", async () => {
    const { orgGuid, guid } = await freshSpace();
    const body = { name: unique("sq"), relationships: { organization: { data: { guid: orgGuid } }, spaces: { data: [{ guid }] } } };
    expect((await api("POST", "/v3/space_quotas", { token: dev.token, body })).status).toBe(403);
    expect((await api("POST", "/v3/organization_quotas", { token: dev.token, body: { name: unique("oq") } })).status).toBe(403);
    const q = await spaceQuota(orgGuid, guid, { total_memory_in_mb: 1 });
    expect((await api("PATCH", `/v3/space_quotas/${q.guid}`, { token: dev.token, body: { apps: { total_memory_in_mb: 100_000 } } })).status).toBe(403);
    expect((await api("DELETE", `/v3/space_quotas/${q.guid}/relationships/spaces/${guid}`, { token: dev.token })).status).toBe(403);
    // An applied quota is not deleted; once removed from its space it is, with CC's job.
    expect((await api("DELETE", `/v3/space_quotas/${q.guid}`, { token: ADMIN })).status).toBe(422);
    expect((await api("DELETE", `/v3/space_quotas/${q.guid}/relationships/spaces/${guid}`, { token: ADMIN })).status).toBe(204);
    const deleted = await api("DELETE", `/v3/space_quotas/${q.guid}`, { token: ADMIN });
    expect(deleted.status).toBe(202);
    expect(deleted.headers.get("location")).toMatch(/\/v3\/jobs\//);
    expect((await api("GET", `/v3/space_quotas/${q.guid}`, { token: ADMIN })).status).toBe(404);
  });
});

describe("a space developer over quota", () => {
  it("cannot scale a started app past the space's total memory; the process is unchanged, and scaling down still works", async () => {
    const space = await freshSpace();
    await spaceQuota(space.orgGuid, space.guid, { total_memory_in_mb: 256 });
    const app = await makeStartableApp(space.guid, dev.token);
    expect((await scale(app.guid, { instances: 2, memory_in_mb: 128 })).status).toBe(202);
    expect((await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: dev.token })).status).toBe(200);
    refused(await scale(app.guid, { instances: 3 }), /^memory space_quota_exceeded: space quota '.+' allows 256 MB of memory in total, this would use 384 MB$/);
    expect(await web(app.guid)).toMatchObject({ instances: 2, memory_in_mb: 128 });
    expect((await scale(app.guid, { instances: 1 })).status).toBe(202);
  });

  it("cannot start an app whose instances would pass the space's quota; it stays stopped", async () => {
    const space = await freshSpace();
    await spaceQuota(space.orgGuid, space.guid, { total_instances: 2 });
    const app = await makeStartableApp(space.guid, dev.token);
    expect((await scale(app.guid, { instances: 3, memory_in_mb: 64 })).status).toBe(202);
    refused(await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: dev.token }), /^instances space_app_instance_limit_exceeded: space quota '.+' allows 2 app instances, this would run 3$/);
    const [row] = await db().select().from(schema.apps).where(eq(schema.apps.guid, app.guid));
    expect(row!.state).toBe("STOPPED");
    expect(await db().select().from(schema.instances).where(eq(schema.instances.appGuid, app.guid))).toEqual([]);
  });

  it("cannot give one instance more memory than the organization's quota allows, started or not", async () => {
    const oq = await api("POST", "/v3/organization_quotas", { token: ADMIN, body: { name: unique("oq"), apps: { per_process_memory_in_mb: 256 } } });
    expect(oq.status, JSON.stringify(oq.json)).toBe(201);
    const space = await freshSpace();
    const applied = await api("POST", `/v3/organization_quotas/${oq.json.guid}/relationships/organizations`, { token: ADMIN, body: { data: [{ guid: space.orgGuid }] } });
    expect(applied.json.data).toEqual([{ guid: space.orgGuid }]);
    const app = await makeStartableApp(space.guid, dev.token);
    refused(await scale(app.guid, { memory_in_mb: 512 }), /^memory instance_memory_limit_exceeded: organization quota '.+' allows 256 MB per instance, 512 MB was asked for$/);
    expect((await web(app.guid)).memory_in_mb).not.toBe(512);
  });

  it("cannot pass the organization's total by starting in another space of it what its other spaces already run", async () => {
    const oq = await api("POST", "/v3/organization_quotas", { token: ADMIN, body: { name: unique("oq"), apps: { total_memory_in_mb: 1024 } } });
    expect(oq.status, JSON.stringify(oq.json)).toBe(201);
    const first = await freshSpace();
    expect((await api("POST", `/v3/organization_quotas/${oq.json.guid}/relationships/organizations`, { token: ADMIN, body: { data: [{ guid: first.orgGuid }] } })).status).toBe(200);
    const second = await createSpace(unique("space"), first.orgGuid);
    await addDeveloper(dev.guid, second.guid, first.orgGuid);
    const running = await makeStartableApp(first.guid, dev.token);
    expect((await scale(running.guid, { instances: 1, memory_in_mb: 512 })).status).toBe(202);
    expect((await api("POST", `/v3/apps/${running.guid}/actions/start`, { token: dev.token })).status).toBe(200);
    const next = await makeStartableApp(second.guid, dev.token);
    expect((await scale(next.guid, { instances: 1, memory_in_mb: 768 })).status).toBe(202);
    refused(await api("POST", `/v3/apps/${next.guid}/actions/start`, { token: dev.token }), /^memory quota_exceeded: organization quota '.+' allows 1024 MB of memory in total, this would use 1280 MB$/);
    // What the organization's other spaces stop frees room here.
    expect((await api("POST", `/v3/apps/${running.guid}/actions/stop`, { token: dev.token })).status).toBe(200);
    expect((await api("POST", `/v3/apps/${next.guid}/actions/start`, { token: dev.token })).status).toBe(200);
  });

  it("cannot pass the default organization quota of a fresh deployment", async () => {
    const space = await freshSpace();
    const app = await makeStartableApp(space.guid, dev.token);
    expect((await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: dev.token })).status).toBe(200);
    refused(await scale(app.guid, { instances: 11, memory_in_mb: 1024 }), /^memory quota_exceeded: organization quota 'default' allows 10240 MB of memory in total, this would use 11264 MB$/);
  });

  it("cannot make more routes than the space's quota allows", async () => {
    const space = await freshSpace();
    await spaceQuota(space.orgGuid, space.guid, {}, 1);
    const route = (host: string) => api("POST", "/v3/routes", { token: dev.token, body: { host, relationships: { space: { data: { guid: space.guid } } } } });
    expect((await route(unique("r"))).status).toBe(201);
    const second = unique("r");
    refused(await route(second), /^Routes quota exceeded for space '.+': space quota '.+' allows 1 routes\.$/);
    expect(await db().select().from(schema.routes).where(eq(schema.routes.host, second))).toEqual([]);
  });

  it("cannot run an unlimited log rate where the quota limits it", async () => {
    const space = await freshSpace();
    await spaceQuota(space.orgGuid, space.guid, { log_rate_limit_in_bytes_per_second: 1024 });
    const app = await makeStartableApp(space.guid, dev.token);
    refused(await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: dev.token }), /^log_rate_limit cannot be unlimited in space quota/);
    expect((await scale(app.guid, { log_rate_limit_in_bytes_per_second: 512 })).status).toBe(202);
    expect((await api("POST", `/v3/apps/${app.guid}/actions/start`, { token: dev.token })).status).toBe(200);
  });
});
