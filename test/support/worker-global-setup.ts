/**
 * @module Global setup of the worker project. Tests inside workerd cannot
 * start processes or listen, so everything staging tests talk to is started
 * here, on loopback, and handed in with `provide`: the fixture registry
 * (`inject("registry")`) and, under `inject("stagingRegistries")`, the same
 * storage behind Basic auth and behind TLS, a proxy corrupting every blob
 * (the config then fails its digest), a server that never answers, an
 * address where nothing listens, hostile registries aiming redirects and
 * token realms at a loopback service, and one serving a bloated image.
 */
import type { TestProject } from "vitest/node";
import type { StagingRegistries } from "./provided";
import { acquireFixtureRegistry, releaseFixtureRegistry } from "./fixture-registry";
import { startHangingServer, startRegistry, stoppedAddress } from "./registry";
import { startCraftedImageRegistry } from "./crafted-image-registry";
import { startInwardService } from "./inward-service";
import { corruptJson, startRegistryProxy } from "./registry-proxy";

export async function setup(project: TestProject) {
  const registry = await acquireFixtureRegistry();
  const basicUsername = "stager";
  const basicPassword = "pa55-word";
  const [basic, tls, hanging, tampered] = await Promise.all([
    startRegistry({ storageDir: registry.storageDir, auth: { kind: "basic", username: basicUsername, password: basicPassword } }),
    startRegistry({ storageDir: registry.storageDir, tls: true }),
    startHangingServer(),
    startRegistryProxy(`http://${registry.host}`, (r) => (r.path.includes("/blobs/") ? { tamper: corruptJson } : undefined)),
  ]);
  const inward = await startInwardService();
  const bloatedImage = await startCraftedImageRegistry({ config: { Env: Array.from({ length: 100_000 }, (_, i) => `V${i}=x`), Cmd: ["/app"] }, layers: 1 });
  const [redirectsInward, realmInward] = await Promise.all([
    startRegistryProxy(`http://${registry.host}`, (r) => (r.path.includes("/manifests/") ? { redirect: `${inward.url}/latest/meta-data/` } : undefined)),
    startRegistryProxy(`http://${registry.host}`, (r) => (r.path === "/v2/"
      ? { respond: { status: 401, headers: { "www-authenticate": `Bearer realm="${inward.url}/token",service="evil"` } } }
      : undefined)),
  ]);
  project.provide("registry", registry);
  const provided: StagingRegistries = {
    basic: basic.host, basicUsername, basicPassword, tls: tls.host, tlsCaPem: tls.caPem!, tampered: tampered.host, hanging: hanging.host, stopped: await stoppedAddress(),
    inward: inward.host, redirectsInward: redirectsInward.host, realmInward: realmInward.host, bloatedImage: bloatedImage.host,
  };
  project.provide("stagingRegistries", provided);
  return async () => {
    await Promise.all([basic.stop(), tls.stop(), hanging.stop(), tampered.stop(), inward.stop(), redirectsInward.stop(), realmInward.stop(), bloatedImage.stop()]);
    await releaseFixtureRegistry();
  };
}
