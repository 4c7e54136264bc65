/**
 * @module Global setup of the worker project. Tests inside workerd cannot
 * start processes or listen, so everything staging tests talk to is started
 * here, on loopback, and handed in with `provide`: the fixture registry
 * (`inject("registry")`) and, under `inject("stagingRegistries")`, the same
 * storage behind Basic auth and behind TLS, a proxy corrupting every blob
 * (the config then fails its digest), a server that never answers, and an
 * address where nothing listens.
 */
import type { TestProject } from "vitest/node";
import { acquireFixtureRegistry, releaseFixtureRegistry } from "./fixture-registry";
import { startHangingServer, startRegistry, stoppedAddress } from "./registry";
import { corruptJson, startRegistryProxy } from "./registry-proxy";

/** Every value is a `127.0.0.1:PORT`. */
export interface StagingRegistries {
  /** htpasswd Basic auth; user and password below. */
  basic: string;
  basicUsername: string;
  basicPassword: string;
  /** https with a CA nobody trusts: only a cell could use it. */
  tls: string;
  /** Serves the fixtures with every blob corrupted. */
  tampered: string;
  hanging: string;
  stopped: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    stagingRegistries: StagingRegistries;
  }
}

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
  project.provide("registry", registry);
  project.provide("stagingRegistries", {
    basic: basic.host, basicUsername, basicPassword, tls: tls.host, tampered: tampered.host, hanging: hanging.host, stopped: await stoppedAddress(),
  });
  return async () => {
    await Promise.all([basic.stop(), tls.stop(), hanging.stop(), tampered.stop()]);
    await releaseFixtureRegistry();
  };
}
