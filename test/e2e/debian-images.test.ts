/**
 * The realistic image set (test/fixtures/debian): images built the way
 * people build theirs, from Debian's own packages, each pushed with
 * `berth push` through the whole stack (wrangler dev, one cell agent, the
 * router) and answering through the router — or, for the worker, staying
 * RUNNING. Also: nginx stopped with its STOPSIGNAL drains a slow request in
 * flight; a cfenv app finds its own URL and CF's instance variables; `berth
 * app` shows the image, the start command and real disk usage; a private
 * image pulls with CF_DOCKER_PASSWORD.
 *
 * The images are built once per recipe and cached outside the clone
 * (test/fixtures/debian/build.ts); the first run on a machine runs
 * debootstrap (minutes), later ones only push.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DEFAULT_PATH } from "../../agent/runtime/config";
import { pushDebianImages } from "../fixtures/debian/build";
import { EXTRA_LAYERS, SLOW_BYTES } from "../fixtures/debian/images";
import { pushOciImage, writeOciImage } from "../fixtures/layers/oci-image";
import { tarBuffer } from "../fixtures/layers/tar";
import { berthCli } from "../support/cli";
import type { CellAddress } from "../support/netns";
import { startRegistry } from "../support/registry";
import { adminCall, eventually, getVia, startOneCellStack, type Daemon, type OneCellStack } from "../support/stack";

const registry = inject("registry");
let stack: OneCellStack;
let cell: CellAddress;
let router: Daemon & { port: number };
let home: string;
const pushed: string[] = [];

const { berth, ok, intoNewSpace } = berthCli(() => home);
const image = (name: string) => `${registry.host}/debian-${name}:latest`;
const host = (app: string) => `${app}.apps.localhost`;

/** Pushes `name` from the set (1 GiB of disk: the base image alone is ~220 MB) and waits for a 200 through the router. */
async function pushAndGet(app: string, name: string, path = "/", ...extra: string[]): Promise<string> {
  pushed.push(app);
  const out = await ok("push", app, "-o", image(name), "-m", "128M", "-k", "1G", ...extra);
  expect(out).toContain(`App ${app} is running.`);
  return eventually(`${app} through the router`, async () => {
    const r = await getVia(router.port, host(app), path);
    return r.status === 200 ? r.body : undefined;
  }, 60_000);
}

interface Stats { index: number; state: string; host?: string; instance_ports?: { external: number; internal: number }[]; usage?: { disk?: number } }
const appJson = async (app: string) => JSON.parse(await ok("app", app, "--json")) as { app: { guid: string }; docker_image: string | null; instances: Stats[]; processes: { type: string; command: string | null }[] };
const recentLines = async (app: string) => (JSON.parse(await ok("logs", app, "--recent", "--json")) as { lines: { line: string }[] }).lines.map((l) => l.line);

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "berth-e2e-home-"));
  stack = await startOneCellStack({
    name: `e2e-debian-${process.pid}`, registryHost: registry.host, portMin: 43000, portMax: 43999,
    // CF's grace period and more: nginx's graceful stop must have time to finish the slow request.
    agentExtra: ["--stop-grace-ms", "20000"],
  });
  ({ cell, router } = stack);
  await intoNewSpace(stack.cp.url, stack.cp.adminToken, "real");
  await ok("enable-feature-flag", "diego_docker");
  await pushDebianImages(registry.host);
}, 1_200_000);

afterAll(async () => {
  for (const app of pushed) await berth("delete", app, "-f");
  await stack?.stop();
  await rm(home, { recursive: true, force: true });
}, 120_000);

describe.sequential("real-world images through berth push and the router", () => {
  it("nginx as root on 80; berth app shows its image, start command and the disk it uses", async () => {
    expect(await pushAndGet("nginx", "nginx")).toBe("nginx on 80 as root\n");
    const app = await appJson("nginx");
    expect(app.docker_image).toBe(image("nginx"));
    expect(app.processes.map((p) => [p.type, p.command])).toEqual([["web", "nginx -g daemon off;"]]);
    // The upper filesystem's used bytes: nginx's pid file and temp dirs, ext4's own metadata.
    const disk = await eventually("a disk usage report", async () => (await appJson("nginx")).instances[0]?.usage?.disk || undefined);
    expect(disk).toBeGreaterThan(0);
    const out = await ok("app", "nginx");
    expect(out).toContain(`docker image:      ${image("nginx")}`);
    expect(out).toContain("start command:  nginx -g daemon off;");
    expect(out).toMatch(/#0 +running .* of 128\.0M +\S+ of 1\.0G /);
  }, 300_000);

  it("nginx stopped with its STOPSIGNAL (SIGQUIT) finishes a slow request in flight before it exits", async () => {
    const body = new Promise<{ status: number; bytes: number }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: router.port, path: "/slow.bin", headers: { host: host("nginx") }, agent: false }, (res) => {
        let bytes = 0;
        res.on("data", (d: Buffer) => (bytes += d.length));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
        res.on("error", reject);
        started();
      });
      req.on("error", reject);
      req.end();
    });
    let started!: () => void;
    await new Promise<void>((r) => (started = r));
    await ok("stop", "nginx");
    const { status, bytes } = await body;
    expect(status).toBe(200);
    expect(bytes).toBe(SLOW_BYTES);
    // The request was in flight when the signal came: nginx logged the SIGQUIT before the access line of /slow.bin.
    const lines = await eventually("nginx's stop in the logs", async () => {
      const l = await recentLines("nginx");
      return l.some((x) => x.includes("GET /slow.bin")) ? l : undefined;
    });
    const quit = lines.findIndex((l) => /signal 3 \(SIGQUIT\) received/.test(l));
    expect(quit).toBeGreaterThanOrEqual(0);
    expect(quit).toBeLessThan(lines.findIndex((l) => l.includes("GET /slow.bin")));
    expect(lines.some((l) => /SIGTERM|SIGKILL/.test(l))).toBe(false);
  }, 120_000);

  it("python3's http.server as USER nobody in its WORKDIR, on port 80", async () => {
    expect(await pushAndGet("pynobody", "python-nobody")).toBe("python as nobody on 80\n");
  }, 300_000);

  it("an ENTRYPOINT shell script that ends in exec \"$@\"", async () => {
    expect(await pushAndGet("entry", "entrypoint-script")).toBe("prepared by docker-entrypoint.sh for: python3 -m http.server 8000\n");
  }, 300_000);

  it(`an image of ${EXTRA_LAYERS + 1} layers, applied in order`, async () => {
    expect(await pushAndGet("layers", "many-layers", "/last.txt")).toBe(`${EXTRA_LAYERS}\n`);
    expect((await getVia(router.port, host("layers"), "/1.txt")).body).toBe("layer 1\n");
    expect((await getVia(router.port, host("layers"), `/${EXTRA_LAYERS}.txt`)).body).toBe(`layer ${EXTRA_LAYERS}\n`);
  }, 300_000);

  it("an image with no PATH in its Env runs on the default PATH", async () => {
    const manifest = await (await fetch(`http://${registry.host}/v2/debian-no-path/manifests/latest`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })).json() as { config: { digest: string } };
    const config = await (await fetch(`http://${registry.host}/v2/debian-no-path/blobs/${manifest.config.digest}`)).json() as { config: { Env?: string[] } };
    expect(config.config.Env ?? []).toEqual([]);
    expect(await pushAndGet("nopath", "no-path")).toBe(`PATH=${DEFAULT_PATH}\n`);
  }, 300_000);

  it("an image that writes under /var/cache, /run and /tmp at start", async () => {
    expect(await pushAndGet("writer", "writes-at-start")).toBe("cache=cached run=pid tmp=scratch\n");
  }, 300_000);

  it("a process-only worker (no port, -u process) stays RUNNING", async () => {
    pushed.push("worker");
    await ok("push", "worker", "-o", image("worker"), "-m", "64M", "-k", "1G", "-u", "process", "--no-route");
    await eventually("five ticks in the logs", async () => ((await recentLines("worker")).includes("tick 5") ? true : undefined), 60_000);
    const app = await appJson("worker");
    expect(app.instances.map((i) => i.state)).toEqual(["RUNNING"]);
  }, 300_000);

  it("a cfenv app reports its own URL and CF's instance variables", async () => {
    const report = JSON.parse(await pushAndGet("cfenv", "cfenv")) as { url: string; urls: string[]; name: string; port: number; isLocal: boolean; env: Record<string, string> };
    expect(report).toMatchObject({ url: `https://${host("cfenv")}`, urls: [`https://${host("cfenv")}`], name: "cfenv", port: 8080, isLocal: false });
    const stats = (await appJson("cfenv")).instances[0]!;
    const external = stats.instance_ports![0]!.external;
    const vcap = JSON.parse(report.env.VCAP_APPLICATION!);
    expect(report.env).toMatchObject({
      PORT: "8080", MEMORY_LIMIT: "128m", VCAP_SERVICES: "{}", INSTANCE_INDEX: "0", CF_INSTANCE_INDEX: "0",
      CF_INSTANCE_IP: cell.address, CF_INSTANCE_PORT: String(external), CF_INSTANCE_ADDR: `${cell.address}:${external}`,
      CF_INSTANCE_PORTS: JSON.stringify([{ external, internal: 8080 }]),
    });
    expect(report.env.CF_INSTANCE_GUID).toBe(report.env.INSTANCE_GUID);
    expect(report.env.CF_INSTANCE_INTERNAL_IP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(vcap).toMatchObject({ application_name: "cfenv", application_uris: [host("cfenv")], space_name: "real", organization_name: "default", organization_id: expect.any(String), instance_index: 0, instance_id: report.env.INSTANCE_GUID, limits: { mem: 128, disk: 1024 } });
  }, 300_000);

  it("pulls a private image with the password from CF_DOCKER_PASSWORD, or from BERTH_DOCKER_PASSWORD when CF's is unset", async () => {
    const auth = await startRegistry({ storageDir: registry.storageDir, auth: { kind: "basic", username: "alice", password: "s3cret" } });
    const saved = { cf: process.env.CF_DOCKER_PASSWORD, berth: process.env.BERTH_DOCKER_PASSWORD };
    const setEnv = (name: "CF_DOCKER_PASSWORD" | "BERTH_DOCKER_PASSWORD", value: string | undefined) => {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    };
    const pushPrivate = () => berth("push", "private", "-o", `${auth.host}/debian-python-nobody:latest`, "--docker-username", "alice", "-m", "64M", "-k", "1G");
    try {
      await adminCall(stack.cp, "PATCH", "/v3/admin/docker_registry_access", { insecure_registries: [registry.host, auth.host] });
      pushed.push("private");
      const attempts: [string | undefined, string | undefined, number][] = [
        ["wrong", undefined, 1],
        [undefined, "s3cret", 0], // the alias alone
        ["wrong", "s3cret", 1], // CF's name wins
        ["s3cret", undefined, 0],
      ];
      for (const [cf, alias, code] of attempts) {
        setEnv("CF_DOCKER_PASSWORD", cf);
        setEnv("BERTH_DOCKER_PASSWORD", alias);
        const r = await pushPrivate();
        expect([cf, alias, r.code]).toEqual([cf, alias, code]);
        if (code) expect(r.err).toMatch(/refused the username and password/);
      }
    } finally {
      setEnv("CF_DOCKER_PASSWORD", saved.cf);
      setEnv("BERTH_DOCKER_PASSWORD", saved.berth);
      await auth.stop();
    }
  }, 300_000);
});

describe.sequential("an image bigger than the process's disk quota", () => {
  it("is refused at staging when its compressed layers alone pass the quota, naming both sizes", async () => {
    pushed.push("toobig");
    const r = await berth("push", "toobig", "-o", image("nginx"), "-m", "64M", "-k", "16M");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/Staging failed: .*the image's layers are \d+\.\d MiB, more than the disk quota of 16M \(16\.0 MiB\)/);
  }, 120_000);

  it("is stopped while streaming when a layer unpacks past the quota, and nothing of it stays on the cell", async () => {
    // 64 MiB of zeros: a few KiB compressed (staging lets it through), 64 MiB unpacked.
    const dir = await mkdtemp(join(tmpdir(), "berth-bomb-"));
    try {
      await writeOciImage(join(dir, "layout"), "latest", [await tarBuffer([{ type: "file", name: "zeros.bin", body: Buffer.alloc(64 << 20) }])], "gzip");
      await pushOciImage(join(dir, "layout"), "latest", registry.host, "zeros");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const layersDir = join(stack.stateDir, "layers");
    const before = (await readdir(layersDir)).sort();
    pushed.push("zeros");
    const r = await berth("push", "zeros", "-o", `${registry.host}/zeros:latest`, "-m", "32M", "-k", "16M");
    expect(r.code).toBe(1);
    const app = await appJson("zeros");
    expect(app.instances[0]!.state).toBe("CRASHED");
    // Why, as cf events shows it: the crash event's exit_description.
    const events = await adminCall<{ resources: { data: { exit_description: string } }[] }>(stack.cp, "GET", `/v3/audit_events?target_guids=${app.app.guid}&types=app.crash`);
    expect(events.resources[0]!.data.exit_description).toMatch(/more than the disk quota of 16M \(16\.0 MiB\)/);
    expect((await readdir(layersDir)).sort()).toEqual(before);
    const du = (dir: string) => execFileSync("du", ["-sx", "--block-size=1", dir], { encoding: "utf8" }).split("\t")[0];
    console.log(`after the refused 64 MiB layer: the cell's layer cache uses ${du(layersDir)} bytes of disk, its whole state dir ${du(stack.stateDir)} (on the host's filesystem: sparse upper images count what they hold, mounts are not walked)`);
  }, 180_000);
});
