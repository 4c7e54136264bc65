/**
 * The real cf CLI pushes and runs Docker apps against the whole stack (wrangler
 * dev, one cell agent, the router, the fixture registry): `cf push --docker-image`
 * and `cf push -f manifest.yml` with two apps, each answering through the router,
 * then the daily verbs, then delete.
 */
import { existsSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CF, type Cf, cfAdminInNewOrg } from "../support/cf-cli";
import { eventually, getVia, startOneCellStack, type OneCellStack } from "../support/stack";

const registry = inject("registry");
let stack: OneCellStack;
let cf: Cf;
const suffix = `${process.pid}-${Date.now().toString(36)}`;

// The page (at / and at /api/) names the instance and the app's GREETING, so the test can tell instances, env and route paths apart.
const START = `echo "started $INSTANCE_INDEX with $GREETING"; mkdir -p /www/api; echo "instance $INSTANCE_INDEX greeting $GREETING" | tee /www/index.html > /www/api/index.html; exec /bin/busybox httpd -f -p $PORT -h /www`;

const page = (host: string, path = "/") => eventually(`a 200 from ${host}${path}`, async () => {
  const p = await getVia(stack.router.port, host, path);
  return p.status === 200 ? p.body : undefined;
}, 120_000);

beforeAll(async () => {
  if (!existsSync(CF)) throw new Error(`the cf CLI is not at ${CF}: set BERTH_CF_CLI`);
  stack = await startOneCellStack({ name: `cfpush-${process.pid}`, registryHost: registry.host, portMin: 43000, portMax: 43999 });
  cf = await cfAdminInNewOrg(stack.cp.url, stack.cp.adminPassword, `org-${suffix}`);
}, 180_000);

afterAll(async () => {
  for (const app of ["web", "front", "back", "renamed", "blank"]) await cf?.run("delete", app, "-r", "-f");
  await stack?.stop();
  if (cf) await rm(cf.home, { recursive: true, force: true });
}, 120_000);

describe.sequential("cf push against the whole stack", () => {
  it("cf enable-feature-flag diego_docker, cf feature-flags", async () => {
    await cf.ok("enable-feature-flag", "diego_docker");
    expect(await cf.ok("feature-flags")).toMatch(/diego_docker\s+enabled/);
  });

  it("cf push APP --docker-image: staged, started, the default route answers through the router", async () => {
    const out = await cf.ok("push", "web", "--docker-image", `${registry.host}/httpd:latest`, "-c", START, "-m", "64M", "-k", "64M");
    expect(out).toMatch(/routes:\s+web\.apps\.localhost/);
    expect(out).toMatch(/#0\s+running/);
    expect(await page("web.apps.localhost")).toBe("instance 0 greeting \n");
  }, 240_000);

  it("cf push -f manifest.yml with two apps: both run with their env and routes", async () => {
    const manifest = join(cf.home, "manifest.yml");
    await writeFile(manifest, `---
applications:
- name: front
  docker:
    image: ${registry.host}/httpd:latest
  command: '${START}'
  memory: 64M
  disk_quota: 64M
  env:
    GREETING: hi-front
  routes:
  - route: front-${process.pid}.apps.localhost
- name: back
  docker:
    image: ${registry.host}/httpd:latest
  command: '${START}'
  memory: 64M
  disk_quota: 64M
  instances: 2
  env:
    GREETING: hi-back
  routes:
  - route: back.apps.localhost
  - route: front-${process.pid}.apps.localhost/api
`);
    await cf.ok("push", "-f", manifest);
    expect(await page(`front-${process.pid}.apps.localhost`)).toBe("instance 0 greeting hi-front\n");
    expect(await page("back.apps.localhost")).toMatch(/^instance [01] greeting hi-back\n$/);
    // One host, two apps: /api is back's route path, the rest front's.
    expect(await page(`front-${process.pid}.apps.localhost`, "/api/")).toMatch(/^instance [01] greeting hi-back\n$/);
    const apps = await cf.ok("apps");
    expect(apps).toMatch(/front\s+started\s+web:1\/1/);
    expect(apps).toMatch(/back\s+started\s+web:2\/2/);
  }, 300_000);

  it("cf app and cf apps show the app, its instances and route", async () => {
    const app = await cf.ok("app", "web");
    expect(app).toMatch(/routes:\s+web\.apps\.localhost/);
    expect(app).toMatch(/docker image:\s+\S+\/httpd:latest/);
    expect(app).toMatch(/#0\s+running/);
    expect(await cf.ok("apps")).toMatch(/web\s+started\s+web:1\/1\s+web\.apps\.localhost/);
  });

  it("cf scale -i 2 adds an instance; cf scale -m -f restarts with the new memory", async () => {
    await cf.ok("scale", "web", "-i", "2");
    await eventually("2 running instances", async () => ((await cf.ok("app", "web")).match(/#\d\s+running/g)?.length === 2 ? true : undefined), 120_000);
    await cf.ok("scale", "web", "-m", "48M", "-f");
    expect(await cf.ok("app", "web")).toMatch(/memory usage:\s+48M/);
  }, 240_000);

  it("cf set-env, cf env, cf restart: the new value reaches the app; cf unset-env removes it", async () => {
    await cf.ok("set-env", "web", "GREETING", "bonjour");
    expect(await cf.ok("env", "web")).toContain("GREETING: bonjour");
    await cf.ok("restart", "web");
    expect(await eventually("the new greeting", async () => {
      const p = await getVia(stack.router.port, "web.apps.localhost");
      return p.body.includes("bonjour") ? p.body : undefined;
    }, 120_000)).toMatch(/greeting bonjour/);
    await cf.ok("unset-env", "web", "GREETING");
    expect(await cf.ok("env", "web")).not.toContain("GREETING: bonjour");
  }, 240_000);

  it("cf logs --recent shows the app's lines; a live cf logs sees a new one after a restart", async () => {
    const recent = await cf.ok("logs", "web", "--recent");
    expect(recent).toMatch(/\[APP\/PROC\/WEB\/0\]\s+OUT started 0 with bonjour/);
    const live = cf.start("logs", "web");
    try {
      await cf.ok("set-env", "web", "GREETING", "tailed");
      await cf.ok("restart", "web");
      await eventually("the live tail to show the new line", async () => (/OUT started \d with tailed/.test(live.output()) ? true : undefined), 120_000);
    } finally {
      live.stop();
    }
  }, 240_000);

  it("cf stop, cf start, cf restage", async () => {
    await cf.ok("stop", "web");
    expect(await cf.ok("app", "web")).toMatch(/requested state:\s+stopped/);
    await cf.ok("start", "web");
    expect(await cf.ok("app", "web")).toMatch(/requested state:\s+started/);
    await cf.ok("restage", "web");
    expect(await page("web.apps.localhost")).toMatch(/^instance \d greeting tailed\n$/);
  }, 300_000);

  it("cf set-health-check http --endpoint, cf get-health-check", async () => {
    await cf.ok("set-health-check", "web", "http", "--endpoint", "/");
    const hc = await cf.ok("get-health-check", "web");
    expect(hc).toMatch(/web\s+http\s+\//);
  });

  it("cf events lists CF's audit event types", async () => {
    const events = await cf.ok("events", "web");
    for (const type of ["audit.app.create", "audit.app.process.scale", "audit.app.update", "audit.app.stop", "audit.app.start", "audit.app.restart"]) {
      expect(events).toContain(type);
    }
  });

  it("cf rename, cf create-app --app-type docker, cf curl, cf create-app-manifest", async () => {
    await cf.ok("rename", "front", "renamed");
    expect(await cf.ok("apps")).toMatch(/renamed\s+started/);
    await cf.ok("create-app", "blank", "--app-type", "docker");
    expect(JSON.parse(await cf.ok("curl", "/v3/apps?names=blank")).resources[0].lifecycle.type).toBe("docker");
    const path = join(cf.home, "web-manifest.yml");
    await cf.ok("create-app-manifest", "web", "-p", path);
    expect(await readFile(path, "utf8")).toMatch(/name: web/);
  });

  it("cf create-route, map-route, routes, unmap-route, delete-route", async () => {
    const host = `extra-${process.pid}`;
    await cf.ok("create-route", "apps.localhost", "--hostname", host);
    await cf.ok("map-route", "web", "apps.localhost", "--hostname", host);
    expect(await cf.ok("routes")).toMatch(new RegExp(`${host}\\s+apps\\.localhost.*web`));
    expect(await page(`${host}.apps.localhost`)).toMatch(/^instance \d/);
    await cf.ok("unmap-route", "web", "apps.localhost", "--hostname", host);
    await cf.ok("delete-route", "apps.localhost", "--hostname", host, "-f");
    expect(await cf.ok("routes")).not.toContain(host);
  }, 120_000);

  it("route paths: cf create-route --path, map-route --path, routes; one host sends / to one app and /api to another", async () => {
    const host = `shop-${process.pid}`;
    await cf.ok("create-route", "apps.localhost", "--hostname", host, "--path", "/api");
    // map-route makes the path-less route itself.
    await cf.ok("map-route", "web", "apps.localhost", "--hostname", host);
    await cf.ok("map-route", "back", "apps.localhost", "--hostname", host, "--path", "/api");
    const routes = await cf.ok("routes");
    expect(routes).toMatch(new RegExp(`${host}\\s+apps\\.localhost\\s+/api\\s.*back`));
    expect(routes).toMatch(new RegExp(`${host}\\s+apps\\.localhost\\s+http.*web`));
    // The router learns the mapping from its next table (within a second): until then / takes /api too.
    await eventually("/api to go to back", async () => (/greeting hi-back\n$/.test((await getVia(stack.router.port, `${host}.apps.localhost`, "/api/")).body) ? true : undefined), 60_000);
    expect(await page(`${host}.apps.localhost`, "/")).toMatch(/^instance \d greeting (?!hi-back)/);
    // Segment by segment: /apix is not under /api, so web answers (its httpd has no such file).
    const apix = await getVia(stack.router.port, `${host}.apps.localhost`, "/apix");
    expect([apix.status, apix.headers["x-berth-router-error"]]).toEqual([404, undefined]);
    expect((await cf.run("create-route", "apps.localhost", "--hostname", host, "--path", "/a?b")).out).toContain("Path cannot contain ?");
    await cf.ok("unmap-route", "back", "apps.localhost", "--hostname", host, "--path", "/api");
    await cf.ok("delete-route", "apps.localhost", "--hostname", host, "--path", "/api", "-f");
    expect(await cf.ok("routes")).not.toMatch(new RegExp(`${host}\\s+apps\\.localhost\\s+/api`));
    await eventually("/api to go to web", async () => (/^instance \d greeting (?!hi-back)/.test((await getVia(stack.router.port, `${host}.apps.localhost`, "/api/")).body) ? true : undefined), 60_000);
    await cf.ok("delete-route", "apps.localhost", "--hostname", host, "-f");
  }, 120_000);

  it("cf delete -r removes the app and its route; the router stops answering for it", async () => {
    await cf.ok("delete", "web", "-r", "-f");
    expect(await cf.ok("apps")).not.toMatch(/^web\s/m);
    expect(JSON.parse(await cf.ok("curl", "/v3/routes?hosts=web")).resources).toEqual([]);
    await eventually("the route to be gone from the router", async () => ((await getVia(stack.router.port, "web.apps.localhost")).status === 404 ? true : undefined), 60_000);
  }, 120_000);
});
