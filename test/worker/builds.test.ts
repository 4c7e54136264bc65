/**
 * Builds inside workerd against real registries on loopback (started by
 * test/support/worker-global-setup.ts): app → package → build → STAGED
 * droplet with CF's metadata, and every way staging fails, each FAILED with
 * a message a user understands and no droplet written. The Stager's alarm is
 * fired with runDurableObjectAlarm instead of waiting for it.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, inject, it, vi } from "vitest";
import * as schema from "../../worker/db/schema";
import type { Stager } from "../../worker/durable/stager";
import { FIXTURES, HTTPD_PORT, MULTI_ARCH } from "../fixtures/images";
import type { StagingRegistries } from "../support/provided";
import { type BuildJson, dockerPackage, finishBuild, setDocker } from "./app-fixtures";
import { ADMIN, addDeveloper, api, createSpace, createUser, db } from "./support";

const { host } = inject("registry");
const faults: StagingRegistries = inject("stagingRegistries");

let space: { guid: string };
let dev: { guid: string; token: string };

beforeAll(async () => {
  await setDocker(true);
  // The Worker reaches plain-HTTP registries only when the admin lists them as insecure.
  const access = await api("PATCH", "/v3/admin/docker_registry_access", { token: ADMIN, body: { insecure_registries: ["127.0.0.1"] } });
  expect(access.status).toBe(200);
  space = await createSpace();
  dev = await createUser();
  await addDeveloper(dev.guid, space.guid);
});

const packageFor = (image: string, credentials?: { username: string; password: string }, token = dev.token) => dockerPackage(space.guid, image, credentials, token);
const finish = (buildGuid: string, token = dev.token) => finishBuild(buildGuid, token);

async function stage(image: string, credentials?: { username: string; password: string }) {
  const { app, pkg } = await packageFor(image, credentials);
  const created = await api("POST", "/v3/builds", { token: dev.token, body: { package: { guid: pkg.guid } } });
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  expect((created.json as BuildJson).state).toBe("STAGING");
  return { app, pkg, build: await finish((created.json as BuildJson).guid) };
}

async function dropletsOf(appGuid: string) {
  return db().select().from(schema.droplets).where(eq(schema.droplets.appGuid, appGuid));
}

describe("POST /v3/builds", () => {
  it("stages the httpd image into a droplet with CF's execution metadata and the pinned image", async () => {
    const { app, build, pkg } = await stage(`${host}/httpd:latest`);
    expect(build).toMatchObject({ state: "STAGED", error: null, package: { guid: pkg.guid } });
    expect(build.droplet).not.toBeNull();
    expect(build.links.droplet!.href).toMatch(new RegExp(`/v3/droplets/${build.droplet!.guid}$`));

    const res = await api("GET", `/v3/droplets/${build.droplet!.guid}`, { token: dev.token });
    expect(res.status).toBe(200);
    const droplet = res.json as Record<string, unknown>;
    const entrypoint = FIXTURES.httpd.Entrypoint;
    expect(droplet).toMatchObject({
      state: "STAGED", lifecycle: { type: "docker", data: {} }, image: `${host}/httpd:latest`,
      process_types: { web: entrypoint.join(" ") }, checksum: null, buildpacks: null, stack: null,
      relationships: { app: { data: { guid: app.guid } } },
    });
    expect(JSON.parse(droplet.execution_metadata as string)).toEqual({ entrypoint, ports: [{ Port: HTTPD_PORT, Protocol: "tcp" }] });
    expect(droplet.execution_metadata).toBe(`{"entrypoint":${JSON.stringify(entrypoint)},"ports":[{"Port":${HTTPD_PORT},"Protocol":"tcp"}]}`);

    // What cells need is kept apart: the pinned digest, layers with diff_ids, the config.
    const [row] = await dropletsOf(app.guid);
    const head = await fetch(`http://${host}/v2/httpd/manifests/latest`, { method: "HEAD", headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
    expect(row!.manifestDigest).toBe(head.headers.get("docker-content-digest"));
    expect(row!.indexDigest).toBeNull();
    const spec = row!.imageSpec as { layers: { diff_id: string; media_type: string }[]; config: { env: string[]; exposed_ports: unknown[] } };
    expect(spec.layers).toHaveLength(2);
    expect(spec.layers.every((l) => l.diff_id.startsWith("sha256:"))).toBe(true);
    expect(spec.config.exposed_ports).toEqual([{ port: HTTPD_PORT, protocol: "tcp" }]);

    const listed = await api("GET", `/v3/apps/${app.guid}/droplets`, { token: dev.token });
    expect((listed.json as { resources: { guid: string }[] }).resources.map((d) => d.guid)).toEqual([build.droplet!.guid]);
    const builds = await api("GET", `/v3/apps/${app.guid}/builds`, { token: dev.token });
    expect((builds.json as { resources: { guid: string }[] }).resources.map((b) => b.guid)).toEqual([build.guid]);
  });

  it("tells the app's logs what staging did, as STG lines before the build's outcome: the image, its digest, Staging complete; a failure says why on stderr", async () => {
    const { app, build } = await stage(`${host}/httpd:latest`);
    expect(build.state).toBe("STAGED");
    const [row] = await dropletsOf(app.guid);
    const lines = (await api("GET", `/v3/apps/${app.guid}/logs`, { token: dev.token })).json.lines as { source?: string; stream: string; line: string }[];
    const stg = lines.filter((l) => l.source === "STG");
    expect(stg.map((l) => l.line)).toEqual([
      `Staging app with Docker image ${host}/httpd:latest`,
      `Image resolved: ${host}/httpd:latest`,
      expect.stringMatching(new RegExp(`^Digest: ${row!.manifestDigest} \\(2 layers, \\d+ bytes compressed\\)$`)),
      "Staging complete",
    ]);
    // Read as the cf CLI reads them during push: STG envelopes.
    const envelopes = (await api("GET", `/api/v1/read/${app.guid}?envelope_types=LOG`, { token: dev.token })).json.envelopes.batch;
    expect(envelopes.filter((e: any) => e.tags.source_type === "STG")).toHaveLength(4);

    const failed = await stage(`${host}/httpd:no-such-tag`);
    expect(failed.build.state).toBe("FAILED");
    const failedLines = (await api("GET", `/v3/apps/${failed.app.guid}/logs`, { token: dev.token })).json.lines as { source?: string; stream: string; line: string }[];
    const last = failedLines.filter((l) => l.source === "STG").at(-1)!;
    expect(last.stream).toBe("stderr");
    expect(`StagingError - Staging error: ${last.line.replace(/^Staging failed: /, "")}`).toBe(failed.build.error);
  });

  it("pins the linux/amd64 manifest of a multi-platform image and keeps the index digest", async () => {
    const { app, build } = await stage(`${host}/multi-arch`);
    expect(build.state).toBe("STAGED");
    const [row] = await dropletsOf(app.guid);
    expect(JSON.parse(row!.executionMetadata)).toEqual({ cmd: MULTI_ARCH.amd64.Cmd });
    expect(row!.indexDigest).toMatch(/^sha256:/);
    expect(row!.manifestDigest).not.toBe(row!.indexDigest);
  });

  it("records user, workdir and every port (UDP too) as the builder does", async () => {
    const ports = await stage(`${host}/ports`);
    const [p] = await dropletsOf(ports.app.guid);
    expect(JSON.parse(p!.executionMetadata).ports).toEqual([
      { Port: 53, Protocol: "tcp" }, { Port: 53, Protocol: "udp" }, { Port: 8081, Protocol: "tcp" }, { Port: 8081, Protocol: "udp" }, { Port: 9090, Protocol: "tcp" },
    ]);
    const user = await stage(`${host}/user-uid-gid`);
    const [u] = await dropletsOf(user.app.guid);
    expect(JSON.parse(u!.executionMetadata)).toEqual({ cmd: FIXTURES["user-uid-gid"].Cmd, user: "1000:1001" });
    const wd = await stage(`${host}/workdir-env`);
    const [w] = await dropletsOf(wd.app.guid);
    expect(JSON.parse(w!.executionMetadata)).toEqual({ cmd: FIXTURES["workdir-env"].Cmd, workdir: "/srv/app" });
    expect((w!.imageSpec as { config: { env: string[] } }).config.env).toContain("GREETING=hello from the image");
  });

  it("pulls from a private registry with the package's credentials, never showing the password", async () => {
    const lines: string[] = [];
    const spies = (["log", "info", "warn", "error"] as const).map((level) =>
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => { lines.push(args.map(String).join(" ")); }));
    try {
      const { build, pkg } = await stage(`${faults.basic}/httpd`, { username: faults.basicUsername, password: faults.basicPassword });
      expect(build.state).toBe("STAGED");
      const shown = await api("GET", `/v3/packages/${pkg.guid}`, { token: dev.token });
      expect(shown.json.data).toMatchObject({ username: faults.basicUsername, password: "***" });
      for (const res of [build, shown.json, (await api("GET", `/v3/droplets/${build.droplet!.guid}`, { token: dev.token })).json]) {
        expect(JSON.stringify(res)).not.toContain(faults.basicPassword);
      }
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    // The Stager runs in this isolate, so its log lines were captured here.
    expect(lines.some((l) => l.includes('"msg":"staged"'))).toBe(true);
    expect(lines.join("\n")).not.toContain(faults.basicPassword);
  });

  it("answers for the package, the flag and the caller before staging anything", async () => {
    const { pkg } = await packageFor(`${host}/httpd`);
    const outsider = await createUser();
    const denied = await api("POST", "/v3/builds", { token: outsider.token, body: { package: { guid: pkg.guid } } });
    expect(denied.status).toBe(422);
    expect(denied.json.errors[0].detail).toMatch(/Unable to use package/);
    expect((await api("POST", "/v3/builds", { token: dev.token, body: { package: { guid: "no-such-package" } } })).status).toBe(422);
    expect((await api("POST", "/v3/builds", { token: dev.token, body: { package: {} } })).status).toBe(422);
    expect((await api("POST", "/v3/builds", { body: { package: { guid: pkg.guid } } })).status).toBe(401);
    expect((await api("GET", `/v3/builds/no-such-build`, { token: dev.token })).status).toBe(404);

    await setDocker(false);
    try {
      const off = await api("POST", "/v3/builds", { token: ADMIN, body: { package: { guid: pkg.guid } } });
      expect(off.status).toBe(403);
      expect(off.json.errors[0]).toMatchObject({ code: 330002, title: "CF-FeatureDisabled", detail: "Feature Disabled: diego_docker" });
    } finally {
      await setDocker(true);
    }
  });

  it("hides another space's builds and droplets", async () => {
    const { build } = await stage(`${host}/cmd-only`);
    const outsider = await createUser();
    expect((await api("GET", `/v3/builds/${build.guid}`, { token: outsider.token })).status).toBe(404);
    expect((await api("GET", `/v3/droplets/${build.droplet!.guid}`, { token: outsider.token })).status).toBe(404);
    const list = await api("GET", "/v3/builds", { token: outsider.token });
    expect((list.json as { resources: unknown[] }).resources).toEqual([]);
    expect((await api("GET", "/v3/droplets", { token: outsider.token })).json.resources).toEqual([]);
    const mine = await api("GET", `/v3/droplets?guids=${build.droplet!.guid}`, { token: dev.token });
    expect(mine.json.resources.map((d: { guid: string }) => d.guid)).toEqual([build.droplet!.guid]);
    const byState = await api("GET", `/v3/builds?guids=${build.guid}&states=STAGED`, { token: dev.token });
    expect(byState.json.pagination.total_results).toBe(1);
  });
});

describe("failed builds", () => {
  it.each([
    ["an unknown tag", () => `${host}/httpd:no-such-tag`, undefined, /StagingError - Staging error: Image ".*httpd:no-such-tag" was not found: httpd has no tag no-such-tag/],
    ["refused credentials", () => `${faults.basic}/httpd`, { username: faults.basicUsername, password: "wrong" }, /refused the username and password/],
    ["missing credentials", () => `${faults.basic}/httpd`, undefined, /requires a username and password/],
    ["a stopped registry", () => `${faults.stopped}/httpd`, undefined, /Cannot connect to http:\/\/127\.0\.0\.1:\d+/],
    ["a registry that never answers", () => `${faults.hanging}/httpd`, undefined, /ran out of time/],
    ["a tampered config blob", () => `${faults.tampered}/httpd`, undefined, /config of .* does not match its digest/],
    ["an image with no command", () => `${host}/no-command`, undefined, /^StagingError - Staging error: Start command not specified$/],
    ["a malformed reference", () => `${host}/Bad/Name`, undefined, /Invalid image reference .*lowercase/],
  ])("%s", async (_name, image, credentials, message) => {
    const { app, build } = await stage(image(), credentials);
    expect(build.state).toBe("FAILED");
    expect(build.error).toMatch(message);
    expect(build.droplet).toBeNull();
    expect(await dropletsOf(app.guid)).toEqual([]);
    if (credentials) expect(JSON.stringify(build)).not.toContain(credentials.password);
  });

  it("stages an image without a command when the web process has one", async () => {
    const { app, pkg } = await packageFor(`${host}/no-command`);
    const patched = await api("PATCH", `/v3/apps/${app.guid}/processes/web`, { token: dev.token, body: { command: "/bin/busybox sleep 1" } });
    expect(patched.status, JSON.stringify(patched.json)).toBe(200);
    const created = await api("POST", "/v3/builds", { token: dev.token, body: { package: { guid: pkg.guid } } });
    const build = await finish((created.json as BuildJson).guid);
    expect(build.state).toBe("STAGED");
  });
});

describe("staging on a cell", () => {
  it("leaves builds for cell-only registries STAGING with staging_location cell", async () => {
    const cellOnly = "registry.cells.internal:5000";
    expect((await api("PATCH", "/v3/admin/docker_registry_access", { token: ADMIN, body: { cell_only_registries: [cellOnly] } })).status).toBe(200);
    try {
      const { pkg } = await packageFor(`${cellOnly}/app:1`);
      const created = await api("POST", "/v3/builds", { token: dev.token, body: { package: { guid: pkg.guid } } });
      expect(created.status).toBe(201);
      const guid = (created.json as BuildJson).guid;
      const [row] = await db().select().from(schema.builds).where(eq(schema.builds.guid, guid));
      expect(row).toMatchObject({ state: "STAGING", stagingLocation: "cell" });
    } finally {
      await api("PATCH", "/v3/admin/docker_registry_access", { token: ADMIN, body: { cell_only_registries: [] } });
    }
  });

  /** Starts a build and fires its Stager until the build is handed to a cell or finished. */
  async function stageTowardsCell(image: string) {
    const { pkg } = await packageFor(image);
    const created = await api("POST", "/v3/builds", { token: dev.token, body: { package: { guid: pkg.guid } } });
    const guid = (created.json as BuildJson).guid;
    const stub = env.STAGER.get(env.STAGER.idFromName(guid));
    let row: typeof schema.builds.$inferSelect | undefined;
    for (let i = 0; i < 100 && row?.stagingLocation !== "cell" && row?.state !== "FAILED"; i++) {
      await runDurableObjectAlarm(stub);
      [row] = await db().select().from(schema.builds).where(eq(schema.builds.guid, guid));
      if (row?.stagingLocation !== "cell") await new Promise((r) => setTimeout(r, 50));
    }
    return row;
  }

  it("hands a TLS registry listed as insecure to a cell (Workers cannot skip verification)", async () => {
    expect(await stageTowardsCell(`${faults.tls}/httpd`)).toMatchObject({ state: "STAGING", stagingLocation: "cell", dropletGuid: null });
  });

  it("fails a build for an unlisted loopback registry in the Worker, CAs or not (a cell would refuse it too)", async () => {
    // A public registry the Worker cannot verify goes to a cell (needsCell, test/worker/staging-location.test.ts);
    // a loopback one must be listed, as cell-only when it has a private CA.
    const set = await api("PATCH", "/v3/admin/docker_registry_access", { token: ADMIN, body: { insecure_registries: [], trusted_ca_certificates: [faults.tlsCaPem] } });
    expect(set.status, JSON.stringify(set.json)).toBe(200);
    try {
      expect(await stageTowardsCell(`${faults.tls}/httpd`)).toMatchObject({ state: "FAILED", dropletGuid: null, error: expect.stringMatching(/is a loopback address, which registries are not fetched from unless the admin lists them/) });
    } finally {
      await api("PATCH", "/v3/admin/docker_registry_access", { token: ADMIN, body: { insecure_registries: ["127.0.0.1"], trusted_ca_certificates: [] } });
    }
  });

  it("speaks only https to a registry the admin did not list as insecure", async () => {
    // Unlisted, the Worker would speak only https to it (the refused URL says so), and refuses it as a loopback host.
    expect((await api("PATCH", "/v3/admin/docker_registry_access", { token: ADMIN, body: { insecure_registries: [] } })).status).toBe(200);
    try {
      const { build } = await stage(`${host}/httpd`);
      expect(build.state).toBe("FAILED");
      expect(build.error).toMatch(/https:\/\/127\.0\.0\.1:\d+, which is refused: 127\.0\.0\.1:\d+ is a loopback address/);
    } finally {
      await api("PATCH", "/v3/admin/docker_registry_access", { token: ADMIN, body: { insecure_registries: ["127.0.0.1"] } });
    }
  });
});

describe("the Stager's time budget", () => {
  it("fails a build whose deadline passed before its run (an evicted or retried alarm)", async () => {
    // A cell-only registry: POST starts no Stager, so this test drives one alone.
    const cellOnly = "registry.budget.internal:5000";
    await api("PATCH", "/v3/admin/docker_registry_access", { token: ADMIN, body: { cell_only_registries: [cellOnly] } });
    let guid: string;
    try {
      const { pkg } = await packageFor(`${cellOnly}/app`);
      guid = ((await api("POST", "/v3/builds", { token: dev.token, body: { package: { guid: pkg.guid } } })).json as BuildJson).guid;
    } finally {
      await api("PATCH", "/v3/admin/docker_registry_access", { token: ADMIN, body: { cell_only_registries: [] } });
    }
    const stub = env.STAGER.get(env.STAGER.idFromName(guid));
    await runInDurableObject(stub, async (obj, state) => {
      await state.storage.put({ build: guid, deadline: Date.now() - 1, budget: 1234 });
      await (obj as Stager).alarm();
      expect(await state.storage.get("build")).toBeUndefined();
    });
    const build = (await api("GET", `/v3/builds/${guid}`, { token: dev.token })).json as BuildJson;
    expect(build).toMatchObject({ state: "FAILED", error: "StagingError - Staging error: staging did not finish within 1234 ms", droplet: null });
  });

  it("ignores a second start and a run for a finished build", async () => {
    const { build } = await stage(`${host}/cmd-only`);
    const stub = env.STAGER.get(env.STAGER.idFromName(build.guid));
    await stub.start(build.guid);
    await runDurableObjectAlarm(stub);
    const after = await api("GET", `/v3/builds/${build.guid}`, { token: dev.token });
    expect(after.json).toMatchObject({ state: "STAGED", droplet: { guid: build.droplet!.guid } });
    expect((await dropletsOf((after.json as { relationships: { app: { data: { guid: string } } } }).relationships.app.data.guid)).length).toBe(1);
  });
});
