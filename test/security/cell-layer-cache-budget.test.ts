/**
 * The layer cache has a budget of its own: pulls past it evict least
 * recently used layers no container holds, never a held one, and an image
 * that cannot fit is refused while it streams, naming the budget and the
 * sizes, so the cache never takes more of the disk than the budget. Images
 * of incompressible 1 MiB layers are pushed to the real fixture registry; the
 * cache's disk use is sampled with du all through the refused pull.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CacheBudget } from "../../agent/images/cache-budget";
import { LayerCache, layerKey } from "../../agent/images/layer-cache";
import type { InstanceImage } from "../../shared/protocol/image";
import { loopbackImageStore, resolveInstanceImage } from "../fixtures/layers/harness";
import { pushOciImage, writeOciImage } from "../fixtures/layers/oci-image";
import { tarBuffer } from "../fixtures/layers/tar";
import { uniqueTag } from "../support/netns";

const run = promisify(execFile);
const registry = inject("registry");
const MiB = 1 << 20;
/** Three 1 MiB layers fit, a fourth does not. */
const BUDGET = 3 * MiB + 256 * 1024;
let base: string;
const images: Record<"a" | "b" | "c" | "d" | "big", InstanceImage> = {} as never;

/** Disk blocks (bytes) under the cache's layers/ and tmp/: what the budget governs. */
async function cacheDisk(root: string): Promise<number> {
  const dirs = (await Promise.all(["layers", "tmp"].map(async (d) => (await readdir(join(root, d))).map((e) => join(root, d, e))))).flat();
  if (dirs.length === 0) return 0;
  const { stdout } = await run("du", ["-s", "-c", "--block-size=1", ...dirs]).catch((err: { stdout: string }) => err);
  return Number(/^(\d+)\s+total$/m.exec(stdout)?.[1] ?? 0);
}

/** du of the whole cache directory (skeleton and state.json too), for the printed figures. */
async function duAll(root: string): Promise<number> {
  return Number((await run("du", ["-s", "--block-size=1", root])).stdout.split("\t")[0]);
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), "berth-cache-budget-"));
  const layout = join(base, "oci");
  const name = `cache-budget-${uniqueTag(6)}`;
  const sizes = { a: MiB, b: MiB, c: MiB, d: MiB, big: 2.5 * MiB };
  for (const [tag, size] of Object.entries(sizes)) {
    const tarball = await tarBuffer([{ type: "file", name: `data-${tag}.bin`, body: randomBytes(size) }]);
    await writeOciImage(layout, tag, [tarball], "gzip");
    await pushOciImage(layout, tag, registry.host, name);
    images[tag as keyof typeof images] = await resolveInstanceImage(`${registry.host}/${name}:${tag}`);
  }
});
afterAll(() => rm(base, { recursive: true, force: true }));

describe("the layer cache's budget", () => {
  it("a tenant pulling image after image evicts only least recently used layers no container holds, and an image that cannot fit is refused without the cache passing its budget", async () => {
    const root = join(base, "cache");
    let clock = 1000;
    const cache = await LayerCache.open(root, { now: () => clock++ });
    const budget = new CacheBudget(cache, BUDGET);
    const store = loopbackImageStore(cache, { budget });
    const dirOf = (image: InstanceImage) => cache.path(layerKey(image.layers[0]!.diff_id));

    await store.pull(images.a, { holder: "ctr-a" });
    await store.pull(images.b, { holder: "ctr-b" });
    await store.pull(images.c, { holder: "ctr-c" });
    // b's and c's containers are gone; b was used longest ago. a's container still runs.
    await store.release("ctr-b");
    await store.release("ctr-c");
    const beforeEviction = await cacheDisk(root);

    await store.pull(images.d, { holder: "ctr-d" });
    expect(existsSync(dirOf(images.b))).toBe(false);
    for (const kept of [images.a, images.c, images.d]) expect(existsSync(dirOf(kept))).toBe(true);
    expect(cache.has(layerKey(images.b.layers[0]!.diff_id))).toBe(false);
    const afterEviction = await cacheDisk(root);

    // a and d are held: the 2.5 MiB image cannot fit whatever is evicted.
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) peak = Math.max(peak, await cacheDisk(root));
    })();
    const before = await duAll(root);
    const err = await store.pull(images.big, { holder: "ctr-big" }).catch((e: unknown) => e);
    sampling = false;
    await sampler;
    peak = Math.max(peak, await cacheDisk(root));
    const after = await duAll(root);
    console.log(
      `layer cache budget ${BUDGET} bytes: layers ${beforeEviction} bytes on disk before the eviction, ${afterEviction} after; ` +
        `the oversized image: ${(err as Error).message}; cache directory ${before} bytes before, ${after} after, ` +
        `layers and extractions at most ${peak} bytes while it streamed`,
    );
    expect(err).toMatchObject({
      code: "CACHE_FULL",
      message: expect.stringMatching(new RegExp(`budget of ${BUDGET} bytes is used up: layer ${images.big.layers[0]!.digest} needs \\d+ more bytes, \\d+ are cached layers`)),
    });
    expect(peak).toBeLessThanOrEqual(BUDGET);
    expect(budget.usedBytes()).toBeLessThanOrEqual(BUDGET);
    expect(await readdir(join(root, "tmp"))).toEqual([]);
    expect(existsSync(dirOf(images.big))).toBe(false);
    // The held layers survived the refused pull.
    for (const kept of [images.a, images.d]) expect(existsSync(dirOf(kept))).toBe(true);
  });
});
