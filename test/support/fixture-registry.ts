/**
 * @module The run's fixture registry: one anonymous `docker-registry` on
 * loopback holding every image of test/fixtures/images.ts, built and pushed
 * once. Both test projects' global setups ask for it; the first call starts
 * it, the last release stops it.
 */
import { buildAndPushFixtures } from "../fixtures/build-images";
import type { ProvidedRegistry } from "./provided";
import { startRegistry, type TestRegistry } from "./registry";


let shared: { registry: Promise<TestRegistry>; users: number } | undefined;

export async function acquireFixtureRegistry(): Promise<ProvidedRegistry> {
  if (!shared) {
    const registry = startRegistry().then(async (r) => {
      try {
        await buildAndPushFixtures(r.host);
        return r;
      } catch (err) {
        await r.stop();
        throw err;
      }
    });
    shared = { registry, users: 0 };
  }
  shared.users++;
  const r = await shared.registry;
  return { host: r.host, storageDir: r.storageDir };
}

export async function releaseFixtureRegistry(): Promise<void> {
  if (!shared || --shared.users > 0) return;
  const { registry } = shared;
  shared = undefined;
  await (await registry).stop();
}
