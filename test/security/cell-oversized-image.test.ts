/**
 * An image bigger than the cell allows one image (uncompressed bytes or
 * entries over all its layers) is stopped while it streams: the pull fails
 * naming the cap, nothing half-written stays, and what the cache keeps (a
 * smaller layer that finished first, verified, for later pulls) is within
 * the cap. Prints the disk the layer cache uses before and after.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { CacheBudget } from "../../agent/images/cache-budget";
import { DEFAULT_PULL_LIMITS, ImageStore } from "../../agent/images/image-store";
import { LayerCache } from "../../agent/images/layer-cache";
import { resolveInstanceImage } from "../fixtures/layers/harness";

const registry = inject("registry");
const base = mkdtempSync(join(tmpdir(), "berth-oversized-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const du = (dir: string) => Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);

async function pullWith(image: { maxBytes: number; maxEntries: number }, name: string) {
  const root = join(base, name);
  const cache = await LayerCache.open(root);
  const store = new ImageStore({ cache, fetch, schemesFor: () => ["http"], listedRegistries: ["127.0.0.1"], ...DEFAULT_PULL_LIMITS, image, budget: new CacheBudget(cache, 2 ** 40) });
  const before = du(root);
  const err = await store.pull(await resolveInstanceImage(`${registry.host}/httpd:latest`), { holder: "oversized" }).catch((e: unknown) => e);
  const after = du(root);
  console.log(`${name}: ${(err as Error).message}; layer cache ${before} bytes before, ${after} after`);
  expect(readdirSync(join(root, "tmp"))).toEqual([]);
  expect(after - before).toBeLessThanOrEqual(image.maxBytes);
  expect(cache.totalBytes()).toBeLessThanOrEqual(image.maxBytes);
  // Inodes the kept layers hold (every path below each layer directory).
  const inodes = execFileSync("find", [join(root, "layers"), "-mindepth", "2"], { encoding: "utf8" }).split("\n").filter(Boolean).length;
  expect(inodes).toBeLessThanOrEqual(image.maxEntries);
  return err;
}

describe("an image over the cell's per-image caps", () => {
  it("an image whose layers unpack to more bytes than one image may take is stopped while it streams and fills nothing past the cap", async () => {
    const err = await pullWith({ maxBytes: 1 << 20, maxEntries: 1_000_000 }, "bytes");
    expect(err).toMatchObject({ code: "IMAGE_TOO_LARGE", message: expect.stringMatching(/more than 1048576 uncompressed bytes/) });
  });

  it("an image whose layers hold more entries than one image may is stopped while it streams, leaving nothing half-written", async () => {
    const err = await pullWith({ maxBytes: 2 ** 40, maxEntries: 100 }, "entries");
    expect(err).toMatchObject({ code: "IMAGE_TOO_LARGE", message: expect.stringMatching(/more than 100 entries/) });
  });
});
