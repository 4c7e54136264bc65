/**
 * The real cf CLI pushes and runs Docker apps against the whole stack (wrangler
 * dev, one cell agent, the router, the fixture registry): `cf push --docker-image`
 * and `cf push -f manifest.yml` with two apps, each answering through the router,
 * then the daily verbs, then delete.
 */
import { existsSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CF, type Cf, cfSession } from "../support/cf-cli";
import { eventually, getVia, startOneCellStack, type OneCellStack } from "../support/stack";

const registry = inject("registry");
let stack: OneCellStack;
let cf: Cf;
const suffix = `${process.pid}-${Date.now().toString(36)}`;

// The page names the instance and the app's GREETING, so the test can tell instances and env apart.
const START = `echo "instance $INSTANCE_INDEX greeting $GREETING" > /www/index.html; exec /bin/busybox httpd -f -p $PORT -h /www`;

const page = (host: string) => eventually(`a 200 from ${host}`, async () => {
  const p = await getVia(stack.router.port, host);
  return p.status === 200 ? p.body : undefined;
}, 120_000);

beforeAll(async () => {
  if (!existsSync(CF)) throw new Error(`the cf CLI is not at ${CF}: set BERTH_CF_CLI`);
  stack = await startOneCellStack({ name: `cfpush-${process.pid}`, registryHost: registry.host, portMin: 43000, portMax: 43999 });
  cf = await cfSession();
  await cf.ok("api", stack.cp.url, "--skip-ssl-validation");
  await cf.ok("auth", "admin", stack.cp.adminPassword);
  await cf.ok("create-org", `org-${suffix}`);
  await cf.ok("target", "-o", `org-${suffix}`);
  await cf.ok("create-space", "dev");
  await cf.ok("target", "-o", `org-${suffix}`, "-s", "dev");
}, 180_000);

afterAll(async () => {
  for (const app of ["web", "front", "back"]) await cf?.run("delete", app, "-r", "-f");
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
`);
    await cf.ok("push", "-f", manifest);
    expect(await page(`front-${process.pid}.apps.localhost`)).toBe("instance 0 greeting hi-front\n");
    expect(await page("back.apps.localhost")).toMatch(/^instance [01] greeting hi-back\n$/);
    const apps = await cf.ok("apps");
    expect(apps).toMatch(/front\s+started\s+web:1\/1/);
    expect(apps).toMatch(/back\s+started\s+web:2\/2/);
  }, 300_000);
});
