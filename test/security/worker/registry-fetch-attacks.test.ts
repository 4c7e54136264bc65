/**
 * Registry fetches aimed inward, staged by the Worker inside workerd (issue
 * 15, item 7; the same client on Node and on a cell's fetch is in
 * test/security/registry-fetch-attacks.test.ts). The hostile registries and
 * the loopback service they aim at are started by the worker project's
 * global setup; the admin lists only the hostile registry itself.
 */
import { beforeAll, describe, expect, inject, it } from "vitest";
import { INWARD_SECRET, type StagingRegistries } from "../../support/provided";
import { setDocker, stageImage } from "../../worker/app-fixtures";
import { ADMIN, addDeveloper, api, createSpace, createUser } from "../../worker/support";

const staging: StagingRegistries = inject("stagingRegistries");
let space: { guid: string };
let dev: { guid: string; token: string };

beforeAll(async () => {
  await setDocker(true);
  const access = await api("PATCH", "/v3/admin/docker_registry_access", { token: ADMIN, body: { insecure_registries: [staging.redirectsInward, staging.realmInward] } });
  expect(access.status, JSON.stringify(access.json)).toBe(200);
  space = await createSpace();
  dev = await createUser();
  await addDeveloper(dev.guid, space.guid);
});

const inwardRequests = async () => (await (await fetch(`http://${staging.inward}/__requests`)).json()) as number;

const stage = (image: string) => stageImage(space.guid, image, dev.token);

describe("the Worker's staging cannot be aimed inward", () => {
  it("a registry that redirects a manifest to an unlisted loopback service fails the build, and the service sees nothing", async () => {
    const before = await inwardRequests();
    const build = await stage(`${staging.redirectsInward}/httpd`);
    expect(build).toMatchObject({ state: "FAILED", droplet: null });
    expect(build.error).toMatch(/is a loopback address, which registries are not fetched from unless the admin lists them/);
    expect(build.error).not.toContain(INWARD_SECRET);
    expect(await inwardRequests()).toBe(before);
  });

  it("a token realm aimed at an unlisted loopback service fails the build, and the service sees nothing", async () => {
    const before = await inwardRequests();
    const build = await stage(`${staging.realmInward}/httpd`);
    expect(build).toMatchObject({ state: "FAILED", droplet: null });
    expect(build.error).toMatch(/is a loopback address/);
    expect(build.error).not.toContain(INWARD_SECRET);
    expect(await inwardRequests()).toBe(before);
  });

  it("an image naming an unlisted loopback service fails the build, and the service sees nothing", async () => {
    const before = await inwardRequests();
    const build = await stage(`${staging.inward}/latest/meta-data`);
    expect(build).toMatchObject({ state: "FAILED", droplet: null });
    expect(build.error).toMatch(/is a loopback address/);
    expect(await inwardRequests()).toBe(before);
  });
});
