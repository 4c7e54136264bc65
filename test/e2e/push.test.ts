/**
 * The whole stack on this machine (issue: CLI, local stack and end to end):
 * wrangler dev, one cell agent, the router and the fixture registry; the CLI
 * pushes the busybox httpd image and curls it through the router.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import WebSocket from "ws";
import { berthCli } from "../support/cli";
import type { ControlPlane } from "../support/control-plane";
import { startRegistry } from "../support/registry";
import { adminCall, eventually, getVia, startOneCellStack, startRouterProcess, type Daemon, type OneCellStack } from "../support/stack";

const registry = inject("registry");
let stack: OneCellStack;
let cp: ControlPlane;
let router: Daemon & { port: number };
let home: string;

const { berth, ok, intoNewSpace } = berthCli(() => home);

const viaRouter = (host: string) => getVia(router.port, host);

// The page names the instance and the app's GREETING, so the test can tell instances and env apart.
const START = `echo "instance $INSTANCE_INDEX greeting $GREETING" > /www/index.html; exec /bin/busybox httpd -f -p $PORT -h /www`;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "berth-e2e-home-"));
  stack = await startOneCellStack({ name: `e2e-${process.pid}`, registryHost: registry.host, portMin: 42000, portMax: 42999 });
  ({ cp, router } = stack);
}, 180_000);

afterAll(async () => {
  await berth("delete", "web", "-f");
  await stack?.stop();
  await rm(home, { recursive: true, force: true });
}, 60_000);

describe.sequential("berth CLI against the whole stack", () => {
  it("logs in, creates a space and enables diego_docker", async () => {
    await intoNewSpace(cp.url, cp.adminToken, "demo");
    const off = await berth("push", "web", "-o", `${registry.host}/httpd:latest`);
    expect(off.code).toBe(1);
    expect(off.err).toContain("CF-FeatureDisabled: Feature Disabled: diego_docker");
    await ok("enable-feature-flag", "diego_docker");
  });

  it("pushes the httpd image and serves it through the router", async () => {
    const out = await ok("push", "web", "-o", `${registry.host}/httpd:latest`, "-m", "64M", "-k", "64M", "-c", START);
    expect(out).toContain("route: http://web.apps.localhost");
    const page = await eventually("the page through the router", async () => {
      const p = await viaRouter("web.apps.localhost");
      return p.status === 200 ? p.body : undefined;
    });
    expect(page).toBe("instance 0 greeting \n");
  }, 180_000);

  it("an admin enrolls a second router with the CLI alone (enrollment-token, register-router), and it serves the app", async () => {
    const token = (await ok("enrollment-token", "router")).trim();
    expect(token).toMatch(/^\S{20,}$/);
    const credential = (await ok("register-router", `cli-router-${process.pid}`, "-t", token)).trim();
    const second = await startRouterProcess(cp.url, credential, join(home, "router-2.log"));
    try {
      const page = await eventually("the page through the second router", async () => {
        const p = await getVia(second.port, "web.apps.localhost");
        return p.status === 200 ? p.body : undefined;
      });
      expect(page).toBe("instance 0 greeting \n");
    } finally {
      await second.kill();
    }
    // The token enrolled one router: a second use is refused, and a cell token cannot be minted as anything else.
    expect((await berth("register-router", "again", "-t", token)).code).toBe(1);
    expect((await berth("enrollment-token", "admin")).err).toContain("Unknown kind 'admin'");
  }, 120_000);

  it("scales to 3 and answers from 3 different instances", async () => {
    await ok("scale", "web", "-i", "3");
    const seen = await eventually("3 distinct instances", async () => {
      const bodies = new Set<string>();
      for (let i = 0; i < 12; i++) bodies.add((await viaRouter("web.apps.localhost")).body);
      return bodies.size === 3 ? bodies : undefined;
    }, 120_000);
    expect([...seen].sort()).toEqual(["instance 0 greeting \n", "instance 1 greeting \n", "instance 2 greeting \n"]);
    const app = JSON.parse(await ok("app", "web", "--json"));
    expect(app.instances.filter((i: { state: string }) => i.state === "RUNNING")).toHaveLength(3);
  }, 180_000);

  it("the demo image npm start offers shows each instance's index, its VCAP_APPLICATION and uptime: after a scale, different instances answer", async () => {
    await ok("push", "demo", "-o", `${registry.host}/demo:latest`, "-m", "32M", "-k", "32M", "-i", "2");
    const pages = await eventually("2 distinct demo instances", async () => {
      const seen = new Map<string, string>();
      for (let i = 0; i < 10; i++) {
        const p = await viaRouter("demo.apps.localhost");
        const index = p.status === 200 ? /^instance: (\d+)$/m.exec(p.body)?.[1] : undefined;
        if (index !== undefined) seen.set(index, p.body);
      }
      return seen.size === 2 ? seen : undefined;
    }, 120_000);
    expect([...pages.keys()].sort()).toEqual(["0", "1"]);
    for (const [index, body] of pages) {
      expect(body).toContain("Hello from Berth's demo app");
      expect(body).toMatch(/^uptime: \d+ s$/m);
      const vcap = JSON.parse(/^VCAP_APPLICATION: (.*)$/m.exec(body)![1]!) as Record<string, unknown>;
      expect(vcap).toMatchObject({ application_name: "demo", instance_index: Number(index) });
    }
    await ok("delete", "demo", "-f");
  }, 180_000);

  it("set-env + restart makes the new value visible", async () => {
    await ok("set-env", "web", "GREETING", "hello");
    expect((await viaRouter("web.apps.localhost")).body).toMatch(/greeting \n$/);
    await ok("restart", "web");
    await eventually("the new env value", async () => ((await viaRouter("web.apps.localhost")).body.includes("greeting hello") ? true : undefined), 120_000);
  }, 180_000);

  it("restage stages the newest package again onto a new droplet and restarts; events lists what happened, newest first", async () => {
    const first = JSON.parse(await ok("restage", "web", "--json"));
    const second = JSON.parse(await ok("restage", "web", "--json"));
    expect(second.droplet).toMatch(/^[0-9a-f-]{36}$/);
    expect(second.droplet).not.toBe(first.droplet);
    await eventually("the restaged app to answer", async () => ((await viaRouter("web.apps.localhost")).body.includes("greeting hello") ? true : undefined), 120_000);
    const events = JSON.parse(await ok("events", "web", "--json")) as { event: string }[];
    const types = events.map((e) => e.event);
    expect(types).toContain("audit.app.build.create");
    expect(types).toContain("audit.app.restart");
    expect(types.indexOf("audit.app.droplet.mapped")).toBeLessThan(types.lastIndexOf("audit.app.create"));
    expect((await berth("restage", "missing-app")).code).toBe(1);
  }, 180_000);

  it("push -f manifest.yml pushes two apps through apply_manifest, one at a host's / and one at its /api", async () => {
    const page = (name: string) => `mkdir -p /www/api; echo ${name} | tee /www/index.html > /www/api/index.html; exec /bin/busybox httpd -f -p $PORT -h /www`;
    const manifest = join(home, "two.yml");
    await writeFile(manifest, `applications:
- name: site
  docker: { image: ${registry.host}/httpd:latest }
  command: '${page("site")}'
  memory: 32M
  disk_quota: 32M
  routes: [{ route: shop.apps.localhost }]
- name: api
  docker: { image: ${registry.host}/httpd:latest }
  command: '${page("api")}'
  memory: 32M
  disk_quota: 32M
  routes: [{ route: shop.apps.localhost/api }]
`);
    const out = await ok("push", "-f", manifest);
    expect(out).toContain("Pushing apps site, api to space");
    expect(out).toMatch(/App api is running\.\nroute: http:\/\/shop\.apps\.localhost\/api/);
    const at = (path: string) => eventually(`a 200 from shop${path}`, async () => {
      const p = await getVia(router.port, "shop.apps.localhost", path);
      return p.status === 200 ? p.body : undefined;
    }, 60_000);
    expect(await at("/")).toBe("site\n");
    expect(await at("/api/")).toBe("api\n");
    // A flag for one app of two has nowhere to go.
    const flagged = await berth("push", "-f", manifest, "-i", "2");
    expect(flagged.code).toBe(1);
    expect(flagged.err).toContain("flags apply to one app");
    // A manifest the API refuses: its words, with the app's name, and nothing made.
    await writeFile(manifest, `applications:\n- name: bad\n  docker: { image: ${registry.host}/httpd:latest }\n  instances: -1\n`);
    const refused = await berth("push", "-f", manifest);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("For application 'bad': Instances must be greater than or equal to 0");
    for (const app of ["site", "api"]) await ok("delete", app, "-f");
  }, 180_000);

  it("ships a container's numbered lines: recent logs show them in order, a live tail sees a new one within 1 s", async () => {
    const counter = "i=0; while :; do i=$((i+1)); echo line $i; sleep 0.1; done";
    await ok("push", "counter", "-o", `${registry.host}/httpd:latest`, "-m", "32M", "-k", "32M", "-u", "process", "-c", counter, "--no-route");
    const recent = await eventually("20 lines in recent logs", async () => {
      const r = JSON.parse(await ok("logs", "counter", "--recent", "--json")) as { lines: { line: string; source?: string }[] };
      // The app's own lines; the platform's (API, STG, CELL) are beside them.
      const own = r.lines.filter((l) => l.source === undefined);
      return own.length >= 20 ? own.map((l) => l.line) : undefined;
    }, 60_000);
    const numbers = recent.map((l) => Number(/^line (\d+)$/.exec(l)?.[1]));
    expect(numbers[0]).toBe(1);
    expect(numbers).toEqual(numbers.map((_, i) => i + 1));

    const app = JSON.parse(await ok("app", "counter", "--json")) as { app: { guid: string } };
    const url = `${cp.url.replace("http", "ws")}/v3/apps/${app.app.guid}/logs/tail`;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${cp.adminToken}` } });
    const latencyMs = await new Promise<number>((resolve, reject) => {
      ws.once("error", reject);
      ws.on("message", (data) => {
        const lines = (JSON.parse(String(data)) as { lines: { timestamp: number; source?: string }[] }).lines.filter((l) => l.source === undefined);
        // The line's timestamp is when the cell read it; arrival here is at most 1 s later.
        if (lines.length > 0) resolve(Date.now() - lines[lines.length - 1]!.timestamp);
      });
    });
    ws.close();
    console.log(`log tail: a new line arrived ${latencyMs} ms after the cell read it`);
    expect(latencyMs).toBeLessThan(1000);
    await ok("delete", "counter", "-f");
  }, 180_000);

  it("stages on the cell an image from a TLS registry whose CA only the admin's registry access names", async () => {
    // The same fixture images, served over https with a certificate of a fresh test CA.
    const tls = await startRegistry({ tls: true, storageDir: registry.storageDir });
    try {
      await adminCall(cp, "PATCH", "/v3/admin/docker_registry_access", {
        insecure_registries: [registry.host], trusted_ca_certificates: [tls.caPem!], cell_only_registries: [tls.host],
      });
      // The Worker may not reach a cell-only registry (nor trust this CA): only the cell can stage and pull it.
      const out = await ok("push", "secure", "-o", `${tls.host}/httpd:latest`, "-m", "32M", "-k", "32M");
      expect(out).toContain(`Staged: ${tls.host}/httpd:latest`);
      expect(out).toContain("App secure is running.");
      const page = await eventually("the TLS-pulled app through the router", async () => {
        const p = await viaRouter("secure.apps.localhost");
        return p.status === 200 ? p.body : undefined;
      });
      expect(page).toBe("<h1>berth httpd fixture</h1>\n");
      await ok("delete", "secure", "-f");
    } finally {
      await adminCall(cp, "PATCH", "/v3/admin/docker_registry_access", { insecure_registries: [registry.host], trusted_ca_certificates: [], cell_only_registries: [] });
      await tls.stop();
    }
  }, 240_000);

  it("disabling diego_docker refuses pushes and stops the running app; enabling brings it back", async () => {
    const t0 = Date.now();
    await ok("disable-feature-flag", "diego_docker");
    const refused = await berth("push", "other", "-o", `${registry.host}/httpd:latest`);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("CF-FeatureDisabled");
    await eventually("the app to stop serving", async () => ((await viaRouter("web.apps.localhost")).status === 503 ? true : undefined), 60_000);
    console.log(`diego_docker off → no instance serving: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await ok("enable-feature-flag", "diego_docker");
    await eventually("the app to serve again", async () => ((await viaRouter("web.apps.localhost")).status === 200 ? true : undefined), 120_000);
  }, 240_000);
});
