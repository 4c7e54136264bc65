/**
 * Rolling deployments with the real cf CLI against the whole stack (wrangler
 * dev, one cell agent, the router, the fixture registry), while a client
 * hammers the app's route through the router and counts every answer that is
 * not the app's 200:
 * - `cf restart --strategy rolling` after an env change: zero failed requests,
 *   and the new process's instances (the new env) replaced every old one;
 * - `cf restage --strategy rolling`: a new droplet, rolled the same way;
 * - `berth restart --strategy rolling`: the same API, the same zero;
 * - `cf push --strategy rolling` with a start command that crashes: no old
 *   instance is dropped, `cf cancel-deployment` rolls back, the old app serves
 *   throughout; `cf events` shows the deployment's create and cancel.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CF, type Cf, cfAdminInNewOrg } from "../support/cf-cli";
import { berthCli } from "../support/cli";
import { eventually, getVia, startOneCellStack, type OneCellStack } from "../support/stack";

const registry = inject("registry");
let stack: OneCellStack;
let cf: Cf;
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const HOST = "roll.apps.localhost";
let berthHome: string;
const berth = berthCli(() => berthHome);

// The page names the app's GREETING, so the test tells the old instances from the new.
const START = `echo "instance $INSTANCE_INDEX greeting $GREETING" > /www/index.html; exec /bin/busybox httpd -f -p $PORT -h /www`;

/** A client hammering the route with `workers` concurrent GETs until stopped; every non-200 (or error) counts as failed. */
function hammer(workers = 4) {
  let running = true;
  const tally = { ok: 0, failed: 0, failures: [] as string[], bodies: new Map<string, number>() };
  const loop = async () => {
    while (running) {
      try {
        const r = await getVia(stack.router.port, HOST);
        if (r.status === 200) {
          tally.ok++;
          tally.bodies.set(r.body, (tally.bodies.get(r.body) ?? 0) + 1);
        } else {
          tally.failed++;
          tally.failures.push(`${r.status} ${r.body.slice(0, 80)}`);
        }
      } catch (e) {
        tally.failed++;
        tally.failures.push((e as Error).message);
      }
    }
  };
  const done = Promise.all(Array.from({ length: workers }, loop));
  return { tally, stop: async () => { running = false; await done; return tally; } };
}

const curl = async <T = any>(path: string): Promise<T> => JSON.parse(await cf.ok("curl", path)) as T;
const appGuid = async () => (await cf.ok("app", "roll", "--guid")).trim();
const webProcesses = async () => (await curl<{ resources: { guid: string; type: string; instances: number }[] }>(`/v3/apps/${await appGuid()}/processes`)).resources.filter((p) => p.type === "web");
const currentDroplet = async () => (await curl<{ guid: string }>(`/v3/apps/${await appGuid()}/droplets/current`)).guid;

beforeAll(async () => {
  if (!existsSync(CF)) throw new Error(`the cf CLI is not at ${CF}: set BERTH_CF_CLI`);
  stack = await startOneCellStack({ name: `cfroll-${process.pid}`, registryHost: registry.host, portMin: 45000, portMax: 45999 });
  cf = await cfAdminInNewOrg(stack.cp.url, stack.cp.adminPassword, `org-${suffix}`);
  await cf.ok("enable-feature-flag", "diego_docker");
  const pushed = await cf.run("push", "roll", "--docker-image", `${registry.host}/httpd:latest`, "-c", START, "-m", "64M", "-k", "64M", "-i", "2");
  if (pushed.code !== 0) throw new Error(`${pushed.out}\n${(await cf.run("logs", "roll", "--recent")).out}\n${(await cf.run("events", "roll")).out}`);
  await eventually("the app answering", async () => ((await getVia(stack.router.port, HOST)).status === 200 ? true : undefined), 120_000);
}, 300_000);

afterAll(async () => {
  await cf?.run("delete", "roll", "-r", "-f");
  if (berthHome) await rm(berthHome, { recursive: true, force: true });
  await stack?.stop();
  if (cf) await rm(cf.home, { recursive: true, force: true });
}, 120_000);

describe.sequential("rolling deployments through the cf CLI", () => {
  it("cf restart --strategy rolling under load: zero failed requests, the new instances replaced every old one", async () => {
    const [before] = await webProcesses();
    await cf.ok("set-env", "roll", "GREETING", "v2");
    const load = hammer();
    let out: string;
    try {
      out = await cf.ok("restart", "roll", "--strategy", "rolling");
    } finally {
      await new Promise((r) => setTimeout(r, 1000));
      await load.stop();
    }
    const { tally } = load;
    console.log(`rolling restart under load: ${tally.ok} answered, ${tally.failed} failed; pages: ${JSON.stringify([...tally.bodies])}`);
    expect(tally.failures).toEqual([]);
    expect(tally.ok).toBeGreaterThan(50);
    expect(out).toMatch(/Creating deployment for app roll/);
    expect(out).toMatch(/#1\s+running/);
    // One web process now, a new one, whose instances all run the new env; the old greeting is gone.
    const after = await webProcesses();
    expect(after.map((p) => p.instances)).toEqual([2]);
    expect(after[0]!.guid).not.toBe(before!.guid);
    const stats = await curl<{ resources: { state: string }[] }>(`/v3/processes/${after[0]!.guid}/stats`);
    expect(stats.resources.map((r) => r.state)).toEqual(["RUNNING", "RUNNING"]);
    for (let i = 0; i < 10; i++) expect((await getVia(stack.router.port, HOST)).body).toMatch(/^instance [01] greeting v2\n$/);
    const [deployment] = (await curl<{ resources: { status: { value: string; reason: string } }[] }>(`/v3/deployments?app_guids=${await appGuid()}&order_by=-created_at`)).resources;
    expect(deployment!.status).toEqual(expect.objectContaining({ value: "FINALIZED", reason: "DEPLOYED" }));
  }, 300_000);

  it("cf restage --strategy rolling: a new droplet, rolled in with zero failed requests", async () => {
    const droplet = await currentDroplet();
    const load = hammer(2);
    try {
      await cf.ok("restage", "roll", "--strategy", "rolling");
    } finally {
      await load.stop();
    }
    expect(load.tally.failures).toEqual([]);
    expect(await currentDroplet()).not.toBe(droplet);
    expect((await webProcesses()).map((p) => p.instances)).toEqual([2]);
  }, 300_000);

  it("berth restart --strategy rolling under load, through the same API: zero failed requests; berth cancel-deployment without one in flight says so", async () => {
    berthHome = await mkdtemp(join(tmpdir(), "berth-e2e-home-"));
    await berth.ok("api", stack.cp.url);
    await berth.ok("login", "-t", stack.cp.adminToken);
    await berth.ok("target", "-o", `org-${suffix}`, "-s", "dev");
    const [before] = await webProcesses();
    const load = hammer(2);
    try {
      expect(await berth.ok("restart", "roll", "--strategy", "rolling")).toContain("Waiting for app to deploy");
    } finally {
      await load.stop();
    }
    expect(load.tally.failures).toEqual([]);
    const after = await webProcesses();
    expect(after.map((p) => p.instances)).toEqual([2]);
    expect(after[0]!.guid).not.toBe(before!.guid);
    const none = await berth.berth("cancel-deployment", "roll");
    expect(none.code).toBe(1);
    expect(none.err).toContain("No active deployment found for app.");
    const bad = await berth.berth("restart", "roll", "--strategy", "blue-green");
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("Invalid deployment strategy 'blue-green'");
  }, 300_000);
  it("cf push --strategy rolling with a crashing command drops no old instance; cf cancel-deployment rolls back while the old app serves", async () => {
    const [old] = await webProcesses();
    const droplet = await currentDroplet();
    const load = hammer(2);
    let cancelAt = 0;
    const push = cf.start("push", "roll", "--docker-image", `${registry.host}/httpd:latest`, "-c", "echo crashing; exit 3", "--strategy", "rolling");
    try {
      // The new process's instance crashes (again and again); the roll never stops an old one.
      const crashed = await eventually("the new instance to crash", async () => {
        const web = await webProcesses();
        const fresh = web.find((p) => p.guid !== old!.guid);
        if (!fresh) return undefined;
        const stats = await curl<{ resources: { state: string }[] }>(`/v3/processes/${fresh.guid}/stats`);
        return stats.resources.some((r) => r.state === "CRASHED") ? fresh : undefined;
      }, 180_000);
      expect(crashed.instances).toBe(1);
      const oldStats = await curl<{ resources: { state: string }[] }>(`/v3/processes/${old!.guid}/stats`);
      expect(oldStats.resources.map((r) => r.state)).toEqual(["RUNNING", "RUNNING"]);
      expect((await webProcesses()).find((p) => p.guid === old!.guid)!.instances).toBe(2);

      cancelAt = Date.now();
      const canceled = await cf.ok("cancel-deployment", "roll");
      expect(canceled).toMatch(/Canceling deployment for app roll/);
      await eventually("the rollback", async () => {
        const web = await webProcesses();
        return web.length === 1 && web[0]!.guid === old!.guid ? true : undefined;
      }, 120_000);
      await eventually("the push to give up", async () => (/Deployment has been canceled/.test(push.output()) ? true : undefined), 60_000);
    } finally {
      push.stop();
      await load.stop();
    }
    console.log(`failing deploy and cancel under load: ${load.tally.ok} answered, ${load.tally.failed} failed`);
    expect(load.tally.failures).toEqual([]);
    expect(await currentDroplet()).toBe(droplet);
    const stats = await curl<{ resources: { state: string }[] }>(`/v3/processes/${old!.guid}/stats`);
    expect(stats.resources.map((r) => r.state)).toEqual(["RUNNING", "RUNNING"]);
    expect((await getVia(stack.router.port, HOST)).body).toMatch(/^instance [01] greeting v2\n$/);
    // Read as Log Cache readers do, from the cancel on: the hammering's RTR lines outnumber what `cf logs --recent` shows.
    const since = BigInt(cancelAt - 5_000) * 1_000_000n;
    const read = await curl<{ envelopes: { batch: { tags: { source_type: string }; log: { payload: string } }[] } }>(`/api/v1/read/${await appGuid()}?envelope_types=LOG&start_time=${since}&limit=1000`);
    const apiLines = read.envelopes.batch.filter((e) => e.tags.source_type === "API").map((e) => Buffer.from(e.log.payload, "base64").toString());
    expect(apiLines.some((l) => l.startsWith("Cancelling deployment for app with guid"))).toBe(true);
    const events = await cf.ok("events", "roll");
    expect(events).toContain("audit.app.deployment.create");
    expect(events).toContain("audit.app.deployment.cancel");
    const [last] = (await curl<{ resources: { status: { value: string; reason: string } }[] }>(`/v3/deployments?app_guids=${await appGuid()}&order_by=-created_at&per_page=1`)).resources;
    expect(last!.status).toEqual(expect.objectContaining({ value: "FINALIZED", reason: "CANCELED" }));
  }, 400_000);
});
