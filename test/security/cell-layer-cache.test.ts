/**
 * The layer cache is shared by every tenant on a cell and keyed by diff_id.
 * It must not be a side door: a tenant naming another tenant's private layer
 * (its digest, or a blob of its own claiming that diff_id) gets nothing from
 * the cache it could not pull itself, and one tenant's failing or hanging
 * fill of a shared layer neither fails nor stalls another's pull. Real
 * registries (a Basic-auth one over the fixture storage), real extraction.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { LayerCache } from "../../agent/images/layer-cache";
import type { InstanceImage } from "../../shared/protocol/image";
import { loopbackImageStore, resolveInstanceImage } from "../fixtures/layers/harness";
import { startRegistry, type TestRegistry } from "../support/registry";

const registry = inject("registry");
const CREDENTIALS = { username: "victim", password: "victim-password" };
let privateRegistry: TestRegistry;
let base: string;
let httpd: InstanceImage;
/** The victim's image, pulled from its private registry with its credentials. */
let victims: InstanceImage;

beforeAll(async () => {
  privateRegistry = await startRegistry({ auth: { kind: "basic", ...CREDENTIALS }, storageDir: registry.storageDir });
  base = await mkdtemp(join(tmpdir(), "berth-cache-door-"));
  httpd = await resolveInstanceImage(`${registry.host}/httpd:latest`);
  victims = { ...httpd, ref: `${privateRegistry.host}/httpd:latest`, credentials: CREDENTIALS };
});
afterAll(async () => {
  await privateRegistry?.stop();
  if (base) await rm(base, { recursive: true, force: true });
});

let n = 0;
const freshCache = (opts: { sharedFillWaitMs?: number } = {}) => LayerCache.open(join(base, `cache-${++n}`), opts);

describe("the shared layer cache is not a side door", () => {
  it("a tenant whose manifest names another tenant's private layers, without its credentials, gets none from the cache", async () => {
    const cache = await freshCache();
    const store = loopbackImageStore(cache);
    await store.pull(victims, { holder: "victim" });
    const { credentials: _, ...stolen } = victims;
    await expect(store.pull(stolen, { holder: "attacker" })).rejects.toMatchObject({ code: "ACCESS_DENIED" });
  });

  it("a tenant whose image claims another tenant's diff_id for a blob of its own gets the blob checked, not the cached layer", async () => {
    const cache = await freshCache();
    const store = loopbackImageStore(cache);
    await store.pull(victims, { holder: "victim" });
    // A public blob (the busybox base layer) presented as the victim's second layer.
    const forged: InstanceImage = { ...httpd, layers: [httpd.layers[0]!, { ...httpd.layers[1]!, digest: httpd.layers[0]!.digest, size: httpd.layers[0]!.size }] };
    await expect(store.pull(forged, { holder: "attacker" })).rejects.toMatchObject({ code: "DIFF_ID_MISMATCH" });
  });

  it("one tenant's failing fill of a shared layer does not fail another tenant's pull of it", async () => {
    const cache = await freshCache();
    const store = loopbackImageStore(cache);
    const { credentials: _, ...noAccess } = victims;
    // The failing pull asks first, so the other waits on its fill.
    const failing = store.pull(noAccess, { holder: "no-access" });
    const allowed = store.pull(victims, { holder: "victim" });
    await expect(failing).rejects.toThrow();
    expect(await allowed).toHaveLength(httpd.layers.length);
  });

  it("one tenant's hanging fill of a shared layer does not stall another's pull past the wait", async () => {
    const cache = await freshCache({ sharedFillWaitMs: 200 });
    const stuck = new AbortController();
    // This tenant's registry answers blob requests never (until the test lets go).
    const hangingFetch: typeof fetch = (input, init) => {
      if (!/\/blobs\//.test(String(input))) return fetch(input, init);
      if (stuck.signal.aborted) return Promise.reject(new Error("let go"));
      return new Promise((_, reject) => stuck.signal.addEventListener("abort", () => reject(new Error("let go"))));
    };
    const hanging = loopbackImageStore(cache, { fetch: hangingFetch }).pull(httpd, { holder: "hanging" });
    const other = loopbackImageStore(cache).pull(httpd, { holder: "other" });
    expect(await other).toHaveLength(httpd.layers.length);
    stuck.abort();
    await hanging.catch(() => undefined);
  });
});
