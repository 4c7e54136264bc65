/**
 * Quotas through the CLI (issue 15, item 5): a space developer over the
 * space's quota gets CC's error from `berth push` and `berth scale`, and
 * nothing was created or changed. The control plane under wrangler dev and
 * the fixture registry; no cell is needed, as every refusal comes before an
 * instance would be placed.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { berthCli } from "../support/cli";
import { controlPlaneSecrets, freePort, startControlPlane, type ControlPlane } from "../support/control-plane";
import { adminCall, eventually } from "../support/stack";

const registry = inject("registry");
let cp: ControlPlane;
let adminHome: string;
let devHome: string;
let space: { guid: string; name: string };

const admin = berthCli(() => adminHome);
const dev = berthCli(() => devHome);
const image = () => `${registry.host}/httpd:latest`;

beforeAll(async () => {
  adminHome = await mkdtemp(join(tmpdir(), "berth-quota-admin-"));
  devHome = await mkdtemp(join(tmpdir(), "berth-quota-dev-"));
  cp = await startControlPlane({ port: await freePort(), ...controlPlaneSecrets() });
  await admin.intoNewSpace(cp.url, cp.adminToken, "quota");
  await admin.ok("enable-feature-flag", "diego_docker");
  await adminCall(cp, "PATCH", "/v3/admin/docker_registry_access", { insecure_registries: [registry.host] });
  space = (await adminCall<{ resources: { guid: string; name: string }[] }>(cp, "GET", "/v3/spaces?names=quota")).resources[0]!;
  const org = (await adminCall(cp, "GET", `/v3/spaces/${space.guid}`)).relationships.organization.data.guid as string;
  await adminCall(cp, "POST", "/v3/space_quotas", {
    name: "small", apps: { total_memory_in_mb: 128, per_process_memory_in_mb: 96 },
    relationships: { organization: { data: { guid: org } }, spaces: { data: [{ guid: space.guid }] } },
  });
  const user = JSON.parse(await admin.ok("create-user", "dana", "--json")) as { token: string };
  const orgName = (await adminCall(cp, "GET", `/v3/organizations/${org}`)).name as string;
  await admin.ok("set-space-role", "dana", orgName, "quota", "SpaceDeveloper");
  await dev.ok("api", cp.url);
  await dev.ok("login", "-t", user.token);
  await dev.ok("target", "-s", "quota");
}, 180_000);

afterAll(async () => {
  await cp?.stop();
  await rm(adminHome, { recursive: true, force: true });
  await rm(devHome, { recursive: true, force: true });
});

const appsNamed = async (name: string) => (await adminCall(cp, "GET", `/v3/apps?names=${name}&space_guids=${space.guid}`)).resources as { guid: string }[];
const routesFor = async (host: string) => (await adminCall(cp, "GET", `/v3/routes?hosts=${host}`)).resources as unknown[];

describe.sequential("a space developer over quota", () => {
  it("berth push with more memory per instance than the quota allows fails with CC's error, and nothing is created", async () => {
    const r = await dev.berth("push", "big", "-o", image(), "-m", "256M");
    expect(r.code).toBe(1);
    expect(r.err).toContain("CF-UnprocessableEntity");
    expect(r.err).toMatch(/memory space_instance_memory_limit_exceeded: space quota 'small' allows 96 MB per instance, 256 MB was asked for/);
    expect(await appsNamed("big")).toEqual([]);
    expect(await routesFor("big")).toEqual([]);
  });

  it("berth push whose instances together pass the quota's total memory fails at start, and nothing is left", async () => {
    const r = await dev.berth("push", "many", "-o", image(), "-m", "64M", "-i", "3");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/memory space_quota_exceeded: space quota 'small' allows 128 MB of memory in total, this would use 192 MB/);
    expect(await appsNamed("many")).toEqual([]);
    expect(await routesFor("many")).toEqual([]);
  }, 120_000);

  it("berth scale past the quota fails with CC's error and the app keeps its size", async () => {
    // An app within the quota, started (no cell here: its instance waits to be placed).
    await dev.ok("push", "fits", "-o", image(), "-m", "64M", "--no-start");
    const [app] = await appsNamed("fits");
    const pkg = (await adminCall(cp, "GET", `/v3/apps/${app!.guid}/packages`)).resources[0];
    const build = await adminCall(cp, "POST", "/v3/builds", { package: { guid: pkg.guid } });
    const staged = await eventually("the build to stage", async () => {
      const b = await adminCall(cp, "GET", `/v3/builds/${build.guid}`);
      if (b.state === "FAILED") throw new Error(b.error);
      return b.state === "STAGED" ? b : undefined;
    });
    await adminCall(cp, "PATCH", `/v3/apps/${app!.guid}/relationships/current_droplet`, { data: { guid: staged.droplet.guid } });
    // Started through the API: `berth start` would wait for an instance no cell is here to run.
    await adminCall(cp, "POST", `/v3/apps/${app!.guid}/actions/start`);

    const r = await dev.berth("scale", "fits", "-i", "3");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/memory space_quota_exceeded: space quota 'small' allows 128 MB of memory in total, this would use 192 MB/);
    const web = await adminCall(cp, "GET", `/v3/apps/${app!.guid}/processes/web`);
    expect(web).toMatchObject({ instances: 1, memory_in_mb: 64 });
    expect((await dev.berth("scale", "fits", "-m", "128M")).err).toMatch(/space_instance_memory_limit_exceeded/);
    expect(await dev.ok("scale", "fits", "-i", "2")).toContain("instances: 2");
  }, 120_000);
});
