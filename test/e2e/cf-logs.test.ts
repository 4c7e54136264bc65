/**
 * The platform's lines as the real cf CLI shows them, against the whole stack
 * (wrangler dev, one cell agent, the router): `cf push` prints the staging
 * lines while it stages; `cf logs --recent` shows STG, CELL, API, RTR and
 * APP/PROC/WEB lines for one app; a crash is `audit.app.process.crash` in
 * `cf events`, with CC's API lines and the cell's exit status in the logs.
 */
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CF, type Cf, cfSession } from "../support/cf-cli";
import { eventually, getVia, startOneCellStack, type OneCellStack } from "../support/stack";

const registry = inject("registry");
let stack: OneCellStack;
let cf: Cf;
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const START = `echo "talker $INSTANCE_INDEX up"; mkdir -p /www; exec /bin/busybox httpd -f -p $PORT -h /www`;

beforeAll(async () => {
  if (!existsSync(CF)) throw new Error(`the cf CLI is not at ${CF}: set BERTH_CF_CLI`);
  stack = await startOneCellStack({ name: `cflogs-${process.pid}`, registryHost: registry.host, portMin: 44000, portMax: 44999 });
  cf = await cfSession();
  await cf.ok("api", stack.cp.url, "--skip-ssl-validation");
  await cf.ok("auth", "admin", stack.cp.adminPassword);
  await cf.ok("create-org", `org-${suffix}`);
  await cf.ok("target", "-o", `org-${suffix}`);
  await cf.ok("create-space", "dev");
  await cf.ok("target", "-o", `org-${suffix}`, "-s", "dev");
  await cf.ok("enable-feature-flag", "diego_docker");
}, 180_000);

afterAll(async () => {
  for (const app of ["talker", "crasher"]) await cf?.run("delete", app, "-r", "-f");
  await stack?.stop();
  if (cf) await rm(cf.home, { recursive: true, force: true });
}, 120_000);

describe.sequential("platform log lines through the cf CLI", () => {
  it("cf push shows the staging lines; cf logs --recent has STG, CELL, API, RTR and APP/PROC/WEB lines", async () => {
    const image = `${registry.host}/httpd:latest`;
    const out = await cf.ok("push", "talker", "--docker-image", image, "-c", START, "-m", "64M", "-k", "64M");
    expect(out).toContain(`Staging app with Docker image ${image}`);
    expect(out).toMatch(/Digest: sha256:[0-9a-f]{64}/);
    expect(out).toContain("Staging complete");
    const served = await eventually("a 200 through the router", async () => {
      const p = await getVia(stack.router.port, "talker.apps.localhost", "/nothing-here");
      return p.status === 404 ? p : undefined; // httpd's own 404: the request reached the app
    }, 120_000);
    expect(served.status).toBe(404);
    const recent = await eventually("every source in cf logs --recent", async () => {
      const r = await cf.ok("logs", "talker", "--recent");
      return /\[RTR\/0\]/.test(r) && /\[APP\/PROC\/WEB\/0\]/.test(r) ? r : undefined;
    }, 60_000);
    // cf push makes the app through apply_manifest, sets the droplet and restarts it.
    expect(recent).toMatch(/\[API\/0\]\s+OUT Updated app with guid [0-9a-f-]{36} \(\{"droplet_guid"=>"[0-9a-f-]{36}"\}\)/);
    expect(recent).toMatch(/\[STG\/0\]\s+OUT Staging complete/);
    expect(recent).toMatch(/\[CELL\/0\]\s+OUT Cell [0-9a-f-]{36} creating container for instance [0-9a-f-]{36}/);
    expect(recent).toMatch(/\[CELL\/0\]\s+OUT Container became healthy/);
    expect(recent).toMatch(/\[API\/0\]\s+OUT Restarted app with guid/);
    expect(recent).toMatch(/\[APP\/PROC\/WEB\/0\]\s+OUT talker 0 up/);
    expect(recent).toMatch(/\[RTR\/0\]\s+OUT talker\.apps\.localhost - \[[^\]]+\] "GET \/nothing-here HTTP\/1\.1" 404 0 \d+ "-" "[^"]*" "[^"]+" "[^"]+" .*app_id:"[0-9a-f-]{36}" app_index:"0"/);
  }, 300_000);

  it("a crash: cf events shows audit.app.process.crash; the logs have CC's API lines and the cell's exit status", async () => {
    // The push itself fails ("Start unsuccessful"): the instance crashes.
    const push = await cf.run("push", "crasher", "--docker-image", `${registry.host}/httpd:latest`, "-c", "sleep 2; exit 3", "-u", "process", "-m", "32M", "-k", "32M", "--no-route");
    expect(push.out).toContain("Staging complete");
    const events = await eventually("the crash in cf events", async () => {
      const e = await cf.ok("events", "crasher");
      return /audit\.app\.process\.crash/.test(e) ? e : undefined;
    }, 120_000);
    expect(events).toMatch(/audit\.app\.process\.crash\s+web\s+.*exit_status: 3/);
    const recent = await eventually("the crash in cf logs --recent", async () => {
      const r = await cf.ok("logs", "crasher", "--recent");
      return /Process has crashed/.test(r) ? r : undefined;
    }, 60_000);
    expect(recent).toMatch(/\[CELL\/0\]\s+OUT Exit status 3/);
    expect(recent).toMatch(/\[API\/0\]\s+OUT Process has crashed with type: "web"/);
    expect(recent).toMatch(/\[API\/0\]\s+OUT App instance exited with guid [0-9a-f-]{36} payload: \{"instance"=>"[0-9a-f-]{36}", "index"=>0, /);
  }, 300_000);
});
