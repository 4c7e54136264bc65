/**
 * App manifests through the Worker: POST /v3/spaces/:guid/actions/apply_manifest
 * (as the cf CLI sends it, YAML) and GET /v3/apps/:guid/manifest, against the
 * real D1. The parser's refusals are CC's (400 with the YAML line, 422 naming
 * the application).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { dockerSpaceWithDeveloper, insertDroplet } from "./app-fixtures";
import { ADMIN, api, createSpace, createUser, db, unique } from "./support";
import { env, exports } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { processingJob } from "../../worker/db/jobs";
import { type ManifestApplier, manifestApplierOf } from "../../worker/durable/manifest-applier";

let space: { guid: string; name: string };
let dev: { guid: string; token: string };

beforeAll(async () => {
  ({ space, dev } = await dockerSpaceWithDeveloper());
});

const jobGuid = (location: string | null) => {
  expect(location).toMatch(/\/v3\/jobs\/[0-9a-f-]+$/);
  return location!.split("/").at(-1)!;
};

/**
 * Fires the job's ManifestApplier alarm (rather than waiting for it; it also
 * fires on its own, and may be running already) until the job has ended.
 */
async function finishJob(guid: string): Promise<void> {
  const stub = manifestApplierOf(env, guid);
  for (let i = 0; i < 200; i++) {
    await runDurableObjectAlarm(stub);
    if ((await api("GET", `/v3/jobs/${guid}`, { token: ADMIN })).json.state !== "PROCESSING") return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`job ${guid} still PROCESSING`);
}

/** POSTs a manifest and lets its job end. */
async function applyManifest(yaml: string, spaceGuid = space.guid, token = dev.token) {
  const res = await exports.default.fetch(`https://berth.test/v3/spaces/${spaceGuid}/actions/apply_manifest`, {
    method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/x-yaml" }, body: yaml,
  });
  const text = await res.text();
  const location = res.headers.get("location");
  if (res.status === 202) await finishJob(jobGuid(location));
  return { status: res.status, location, json: text ? JSON.parse(text) : undefined };
}

async function jobOf(location: string | null, token = dev.token) {
  return (await api("GET", `/v3/jobs/${jobGuid(location)}`, { token })).json;
}

/** The app's API lines once there are `n` (written after the job's writes commit). */
async function eventuallyLines(appGuid: string, n: number): Promise<string[]> {
  for (let i = 0; i < 200; i++) {
    const lines = (await api("GET", `/v3/apps/${appGuid}/logs`, { token: dev.token })).json.lines.filter((l: { source?: string }) => l.source === "API");
    if (lines.length >= n) return lines.map((l: { line: string }) => l.line);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`fewer than ${n} API lines`);
}

const appNamed = async (name: string) => (await api("GET", `/v3/apps?names=${name}&space_guids=${space.guid}`, { token: dev.token })).json.resources[0];

describe("apply_manifest", () => {
  it("what cf push APP --docker-image sends: creates the app and its default route, job COMPLETE", async () => {
    const name = unique("Web_App");
    const res = await applyManifest(`applications:\n- name: ${name}\n  docker:\n    image: registry.test/httpd:latest\n  default-route: true\n`);
    expect(res.status).toBe(202);
    const job = await jobOf(res.location);
    expect(job).toMatchObject({ operation: "app.apply_manifest", state: "COMPLETE", errors: [] });
    const app = await appNamed(name);
    expect(app.lifecycle.type).toBe("docker");
    const routes = (await api("GET", `/v3/apps/${app.guid}/routes`, { token: dev.token })).json.resources;
    // Upper case and '_' cannot be in a host: lower-cased, '-' for the rest.
    expect(routes.map((r: { url: string }) => r.url)).toEqual([`${name.toLowerCase().replace("_", "-")}.apps.localhost`]);
    // A second push keeps the one route (the default route is only for an app without routes).
    await applyManifest(`applications:\n- name: ${name}\n  default-route: true\n`);
    expect((await api("GET", `/v3/apps/${app.guid}/routes`, { token: dev.token })).json.resources).toHaveLength(1);
    // CC's API lines: the app made, each manifest applied.
    const lines = await eventuallyLines(app.guid, 3);
    expect(lines).toEqual([`Created app with guid ${app.guid}`, `Applied manifest to app with guid ${app.guid}`, `Applied manifest to app with guid ${app.guid}`]);
  });

  it("applies instances, memory, disk, command, health check, timeout, env and routes; GET manifest gives them back", async () => {
    const name = unique("full");
    const host = unique("full-host");
    const res = await applyManifest(`---
applications:
- name: ${name}
  instances: 3
  memory: 256M
  disk_quota: 1G
  command: /bin/run --fast
  health-check-type: http
  health-check-http-endpoint: /healthz
  timeout: 30
  env:
    GREETING: hello
    COUNT: 3
  routes:
  - route: ${host}.apps.localhost
`);
    expect(res.status).toBe(202);
    expect((await jobOf(res.location)).state).toBe("COMPLETE");
    const app = await appNamed(name);
    const web = (await api("GET", `/v3/apps/${app.guid}/processes/web`, { token: dev.token })).json;
    expect(web).toMatchObject({ instances: 3, memory_in_mb: 256, disk_in_mb: 1024, command: "/bin/run --fast" });
    expect(web.health_check).toEqual({ type: "http", data: expect.objectContaining({ endpoint: "/healthz", timeout: 30 }) });
    const env = (await api("GET", `/v3/apps/${app.guid}/environment_variables`, { token: dev.token })).json.var;
    expect(env).toEqual({ GREETING: "hello", COUNT: "3" });
    // CC's audit.app.apply_manifest, env values hidden.
    const events = (await api("GET", `/v3/audit_events?target_guids=${app.guid}&types=audit.app.apply_manifest`, { token: ADMIN })).json.resources;
    expect(events).toHaveLength(1);
    expect(events[0].data.request.manifest.env).toEqual({ GREETING: "[PRIVATE DATA HIDDEN]", COUNT: "[PRIVATE DATA HIDDEN]" });
    expect(JSON.stringify(events[0])).not.toContain("hello");
    const routes = (await api("GET", `/v3/apps/${app.guid}/routes`, { token: dev.token })).json.resources;
    expect(routes.map((r: { url: string }) => r.url)).toEqual([`${host}.apps.localhost`]);

    const manifest = await exports.default.fetch(`https://berth.test/v3/apps/${app.guid}/manifest`, { headers: { authorization: `Bearer ${dev.token}` } });
    expect(manifest.headers.get("content-type")).toBe("application/x-yaml");
    const text = await manifest.text();
    expect(text).toContain(`name: ${name}`);
    expect(text).toContain("GREETING: hello");
    expect(text).toContain(`route: ${host}.apps.localhost`);
    expect(text).toContain("memory: 256M");
    expect(text).toContain("health-check-http-endpoint: /healthz");
    // Applying the generated manifest again changes nothing and succeeds.
    expect((await jobOf((await applyManifest(text)).location)).state).toBe("COMPLETE");
  });

  it("two apps in one manifest; random-route gives a host of its own; no-route removes the app's mappings", async () => {
    const a = unique("one");
    const b = unique("two");
    const res = await applyManifest(`applications:\n- name: ${a}\n  default-route: true\n- name: ${b}\n  random-route: true\n`);
    expect((await jobOf(res.location)).state).toBe("COMPLETE");
    const appA = await appNamed(a);
    const appB = await appNamed(b);
    const hostB = (await api("GET", `/v3/apps/${appB.guid}/routes`, { token: dev.token })).json.resources[0].host as string;
    expect(hostB).toMatch(new RegExp(`^${b}-[a-z]+-[a-z]+-\\d+$`));
    await applyManifest(`applications:\n- name: ${a}\n  no-route: true\n`);
    expect((await api("GET", `/v3/apps/${appA.guid}/routes`, { token: dev.token })).json.resources).toEqual([]);
  });

  it("YAML that does not parse: 400 naming the line; nothing created", async () => {
    const name = unique("bad");
    const res = await applyManifest(`applications:\n- name: ${name}\n  env: {A: 1\n  instances: 2\n`);
    expect(res.status).toBe(400);
    expect(res.json.errors[0].title).toBe("CF-MessageParseError");
    expect(res.json.errors[0].detail).toMatch(/line \d+/);
    expect(await appNamed(name)).toBeUndefined();
  });

  it("bad fields: 422 For application 'x' with CC's messages, nothing created", async () => {
    const name = unique("bad");
    const res = await applyManifest(`applications:\n- name: ${name}\n  instances: -1\n  memory: 12Q\n  health-check-type: tcp\n  buildpacks: [ruby]\n`);
    expect(res.status).toBe(422);
    const detail = res.json.errors[0].detail as string;
    expect(detail).toContain(`For application '${name}':`);
    expect(detail).toContain("Instances must be greater than or equal to 0");
    expect(detail).toContain("Memory must use a supported unit");
    expect(detail).toContain('Health check type must be "port", "process", or "http"');
    expect(detail).toContain("Berth runs Docker images only");
    expect(await appNamed(name)).toBeUndefined();
    expect((await applyManifest("applications: []\n")).status).toBe(422);
    expect((await applyManifest("name: x\n")).status).toBe(422);
  });

  it("the job is PROCESSING until its applier has run, then COMPLETE in CC's shape; the applier then forgets it", async () => {
    const name = unique("later");
    const job = await processingJob(db(), "app.apply_manifest", dev.guid);
    const stub = manifestApplierOf(env, job.guid);
    // Held off while the test looks: blockConcurrencyWhile keeps the alarm start() sets from running.
    await runInDurableObject(stub, (applier: ManifestApplier, state) => state.blockConcurrencyWhile(async () => {
      await applier.start({ job: job.guid, space: space.guid, manifest: `applications:\n- name: ${name}\n  instances: 2\n`, principal: { kind: "user", guid: dev.guid, name: "dev", admin: false } });
      expect(await jobOf(`/v3/jobs/${job.guid}`)).toEqual({
        guid: job.guid, operation: "app.apply_manifest", state: "PROCESSING", errors: [], warnings: [],
        created_at: expect.any(String), updated_at: expect.any(String), links: { self: { href: `https://berth.test/v3/jobs/${job.guid}` } },
      });
      expect(await appNamed(name)).toBeUndefined();
    }));
    await finishJob(job.guid);
    expect((await jobOf(`/v3/jobs/${job.guid}`)).state).toBe("COMPLETE");
    expect(await appNamed(name)).toMatchObject({ name });
    expect(await runDurableObjectAlarm(stub)).toBe(false);
    // Only its requester (and admins) may read it.
    expect((await api("GET", `/v3/jobs/${job.guid}`, { token: (await createUser()).token })).status).toBe(404);
  });

  it("a job its applier could not end by the deadline FAILs with CC's UnknownError, and nothing is applied", async () => {
    const name = unique("late");
    const job = await processingJob(db(), "app.apply_manifest", dev.guid);
    const stub = manifestApplierOf(env, job.guid);
    await runInDurableObject(stub, (_applier: ManifestApplier, state) => state.blockConcurrencyWhile(async () => {
      await state.storage.put({ job: job.guid, space: space.guid, manifest: `applications:\n- name: ${name}\n`, principal: { kind: "user", guid: dev.guid, name: "dev", admin: false }, deadline: Date.now() - 1 });
      await state.storage.setAlarm(Date.now());
    }));
    await finishJob(job.guid);
    const ended = await jobOf(`/v3/jobs/${job.guid}`);
    expect([ended.state, ended.errors]).toEqual(["FAILED", [{ code: 10001, title: "CF-UnknownError", detail: "An unknown error occurred." }]]);
    expect(await appNamed(name)).toBeUndefined();
  });

  it("a failing second app: the job FAILED with CC's error for it, the first app applied (CC stops at the failing app)", async () => {
    const [ok, bad] = [unique("ok"), unique("bad")];
    const res = await applyManifest(`applications:\n- name: ${ok}\n- name: ${bad}\n  routes:\n  - route: ${bad}.elsewhere.test\n`);
    const job = await jobOf(res.location);
    expect(job.state).toBe("FAILED");
    expect(job.errors).toEqual([{ code: 10008, title: "CF-UnprocessableEntity", detail: `For application '${bad}': The route '${bad}.elsewhere.test' did not match any existing domains.` }]);
    expect(await appNamed(ok)).toBeDefined();
    expect(await appNamed(bad)).toBeUndefined();
  });

  it("a route on a domain Berth does not serve: job FAILED with CC's error, the app untouched", async () => {
    const name = unique("dom");
    const res = await applyManifest(`applications:\n- name: ${name}\n  routes:\n  - route: x.example.com\n`);
    expect(res.status).toBe(202);
    const job = await jobOf(res.location);
    expect(job.state).toBe("FAILED");
    expect(job.errors[0]).toMatchObject({ title: "CF-UnprocessableEntity", detail: `For application '${name}': The route 'x.example.com' did not match any existing domains.` });
    expect(await appNamed(name)).toBeUndefined();
  });

  it("routes with paths: two apps on one host, one at / and one at /api; GET manifest names the path", async () => {
    const host = unique("shop");
    const [front, back] = [unique("front"), unique("back")];
    const res = await applyManifest(`applications:
- name: ${front}
  routes:
  - route: ${host}.apps.localhost
- name: ${back}
  routes:
  - route: ${host}.apps.localhost/api
`);
    expect((await jobOf(res.location)).state).toBe("COMPLETE");
    const routesOf = async (name: string) => (await api("GET", `/v3/apps/${(await appNamed(name)).guid}/routes`, { token: dev.token })).json.resources.map((r: any) => [r.host, r.path, r.url]);
    expect(await routesOf(front)).toEqual([[host, "", `${host}.apps.localhost`]]);
    expect(await routesOf(back)).toEqual([[host, "/api", `${host}.apps.localhost/api`]]);
    const manifest = await exports.default.fetch(`https://berth.test/v3/apps/${(await appNamed(back)).guid}/manifest`, { headers: { authorization: `Bearer ${dev.token}` } });
    expect(await manifest.text()).toContain(`- route: ${host}.apps.localhost/api`);
    // Applied again, nothing new is made.
    await applyManifest(`applications:\n- name: ${back}\n  routes:\n  - route: ${host}.apps.localhost/api\n`);
    expect(await routesOf(back)).toHaveLength(1);
  });

  it("a route path CC refuses: job FAILED naming the app, nothing created", async () => {
    const name = unique("badpath");
    const job = await jobOf((await applyManifest(`applications:\n- name: ${name}\n  routes:\n  - route: ${unique("h")}.apps.localhost/a?b\n`)).location);
    expect(job.state).toBe("FAILED");
    expect(job.errors[0].detail).toBe(`For application '${name}': Path cannot contain ?`);
    expect(await appNamed(name)).toBeUndefined();
  });

  it("a tenant cannot take another space's route through a manifest", async () => {
    const other = await dockerSpaceWithDeveloper();
    const host = unique("taken");
    expect((await jobOf((await applyManifest(`applications:\n- name: owner\n  routes:\n  - route: ${host}.apps.localhost\n`, other.space.guid, other.dev.token)).location, other.dev.token)).state).toBe("COMPLETE");
    const name = unique("thief");
    const job = await jobOf((await applyManifest(`applications:\n- name: ${name}\n  routes:\n  - route: ${host}.apps.localhost\n`)).location);
    expect(job.state).toBe("FAILED");
    expect(job.errors[0].detail).toContain("is already in use");
    const routes = (await api("GET", `/v3/routes?hosts=${host}`, { token: ADMIN })).json.resources;
    expect(routes).toHaveLength(1);
    expect(routes[0].relationships.space.data.guid).toBe(other.space.guid);
  });

  it("a space the user has no role in: 404, nothing created", async () => {
    const stranger = await createUser();
    const elsewhere = await createSpace();
    const res = await applyManifest(`applications:\n- name: sneaky\n`, elsewhere.guid, stranger.token);
    expect(res.status).toBe(404);
  });
});

describe("domains and deployments the cf CLI reads", () => {
  it("GET /v3/domains lists the shared apps domain; ?names= filters", async () => {
    const all = (await api("GET", "/v3/domains", { token: dev.token })).json;
    expect(all.resources.map((d: { name: string }) => d.name)).toEqual(["apps.localhost"]);
    const one = (await api("GET", `/v3/domains/${all.resources[0].guid}`, { token: dev.token })).json;
    expect(one.name).toBe("apps.localhost");
    expect((await api("GET", "/v3/domains?names=example.com", { token: dev.token })).json.resources).toEqual([]);
    expect((await api("GET", `/v3/domains/${crypto.randomUUID()}`, { token: dev.token })).status).toBe(404);
  });

  it("GET /v3/routes takes the cf CLI's domain_guids and (empty) paths; service_route_bindings is an empty list", async () => {
    const host = unique("r");
    await applyManifest(`applications:\n- name: ${unique("routed")}\n  routes:\n  - route: ${host}.apps.localhost\n`);
    const domain = (await api("GET", "/v3/domains", { token: dev.token })).json.resources[0].guid;
    const found = await api("GET", `/v3/routes?hosts=${host}&domain_guids=${domain}&paths=`, { token: dev.token });
    expect(found.json.resources.map((r: { host: string }) => r.host)).toEqual([host]);
    expect((await api("GET", `/v3/routes?hosts=${host}&domain_guids=${crypto.randomUUID()}`, { token: dev.token })).json.resources).toEqual([]);
    expect((await api("GET", `/v3/routes?hosts=${host}&paths=/api`, { token: dev.token })).json.resources).toEqual([]);
    const bindings = await api("GET", `/v3/service_route_bindings?include=service_instance&route_guids=${found.json.resources[0].guid}`, { token: dev.token });
    expect(bindings.status).toBe(200);
    expect(bindings.json.resources).toEqual([]);
  });

  it("GET /v3/deployments?app_guids=&status_values=ACTIVE is an empty list", async () => {
    const res = await api("GET", `/v3/deployments?app_guids=${crypto.randomUUID()}&status_values=ACTIVE`, { token: dev.token });
    expect(res.status).toBe(200);
    expect(res.json.resources).toEqual([]);
    expect(res.json.pagination.total_results).toBe(0);
  });
});

describe("manifest_diff and sidecars the cf CLI asks for", () => {
  it("POST /v3/spaces/:guid/manifest_diff: CC's ops with was, for a changed app and a new one", async () => {
    const name = unique("diffed");
    await applyManifest(`applications:\n- name: ${name}\n  instances: 1\n  env:\n    A: one\n`);
    const fresh = unique("fresh");
    const res = await exports.default.fetch(`https://berth.test/v3/spaces/${space.guid}/manifest_diff`, {
      method: "POST", headers: { authorization: `Bearer ${dev.token}`, "content-type": "application/x-yaml" },
      body: `applications:\n- name: ${name}\n  env:\n    A: two\n    B: new\n- name: ${fresh}\n  instances: 2\n`,
    });
    expect(res.status).toBe(201);
    const { diff } = await res.json<{ diff: unknown[] }>();
    expect(diff).toEqual([
      { op: "replace", path: "/applications/0/env/A", was: "one", value: "two" },
      { op: "add", path: "/applications/0/env/B", value: "new" },
      { op: "add", path: "/applications/1/instances", value: 2 },
    ]);
  });

  it("GET /v3/packages?app_guids=&order_by=-created_at&per_page=1 gives the newest package (cf restart asks so)", async () => {
    const name = unique("pkgs");
    await applyManifest(`applications:\n- name: ${name}\n`);
    const app = await appNamed(name);
    const make = async (image: string) => (await api("POST", "/v3/packages", { token: dev.token, body: { type: "docker", data: { image }, relationships: { app: { data: { guid: app.guid } } } } })).json.guid;
    await make("registry.test/a:1");
    const newest = await make("registry.test/a:2");
    const res = await api("GET", `/v3/packages?app_guids=${app.guid}&order_by=-created_at&per_page=1`, { token: dev.token });
    expect(res.json.resources.map((p: { guid: string }) => p.guid)).toEqual([newest]);
    // Its STAGED droplets (cf restart asks before deciding to stage); another tenant gets 404.
    const staged = await insertDroplet(app.guid, { packageGuid: newest });
    await insertDroplet(app.guid, { packageGuid: newest, state: "FAILED" });
    const droplets = await api("GET", `/v3/packages/${newest}/droplets?states=STAGED&per_page=1`, { token: dev.token });
    expect(droplets.json.resources.map((d: { guid: string }) => d.guid)).toEqual([staged]);
    expect((await api("GET", `/v3/packages/${newest}/droplets`, { token: (await createUser()).token })).status).toBe(404);
  });

  it("GET /v3/processes/:guid/sidecars is an empty list; another tenant's process is 404", async () => {
    const name = unique("side");
    await applyManifest(`applications:\n- name: ${name}\n`);
    const app = await appNamed(name);
    expect((await api("GET", `/v3/processes/${app.guid}/sidecars`, { token: dev.token })).json.resources).toEqual([]);
    const outsider = await createUser();
    expect((await api("GET", `/v3/processes/${app.guid}/sidecars`, { token: outsider.token })).status).toBe(404);
  });
});
