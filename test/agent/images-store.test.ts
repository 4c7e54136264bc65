// The image store against the real fixture registry (docker-registry on
// loopback): parallel verified pulls into the cache, singleflight, progress,
// restart and crash recovery, the eviction plan and the cache budget setting
// (eviction on a real cache: test/security/cell-layer-cache-budget.test.ts).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { cacheBudgetBytes } from "../../agent/images/cache-budget";
import { planEviction } from "../../agent/images/eviction";
import type { PullProgress } from "../../agent/images/image-store";
import { LayerCache, layerKey } from "../../agent/images/layer-cache";
import type { InstanceImage } from "../../shared/protocol/image";
import { loopbackImageStore, resolveInstanceImage } from "../fixtures/layers/harness";

const registry = inject("registry");
let base: string;
let layersImage: InstanceImage;
let httpdImage: InstanceImage;

/** A fetch that counts blob GETs per digest. */
/** Counts blob downloads, and apart from them the one-byte reads that prove access to a cached layer. */
function countingFetch() {
  const blobGets = new Map<string, number>();
  const blobProbes = new Map<string, number>();
  const f: typeof fetch = (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    const m = /\/blobs\/(sha256:[a-f0-9]+)/.exec(url);
    const counts = new Headers(init?.headers).has("range") ? blobProbes : blobGets;
    if (m) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
    return fetch(input, init);
  };
  return { fetch: f, blobGets, blobProbes };
}

const resolve = (name: string) => resolveInstanceImage(`${registry.host}/${name}:latest`);
const store = (cache: LayerCache, f: typeof fetch = fetch) => loopbackImageStore(cache, { fetch: f });

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), "berth-store-"));
  [layersImage, httpdImage] = await Promise.all([resolve("layers"), resolve("httpd")]);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe("ImageStore.pull", () => {
  it("pulls every layer once for concurrent pulls, with progress, into verified cache directories", async () => {
    const cache = await LayerCache.open(join(base, "c1"));
    const { fetch: f, blobGets } = countingFetch();
    const s = store(cache, f);
    const events: PullProgress[] = [];
    const eventsB: PullProgress[] = [];
    const [a, b] = await Promise.all([
      s.pull(layersImage, { holder: "ctr-a", onProgress: (p) => events.push(p) }),
      // Joins ctr-a's downloads: its progress still ends complete.
      s.pull(layersImage, { holder: "ctr-b", onProgress: (p) => eventsB.push(p) }),
    ]);
    expect(eventsB.at(-1)).toEqual(events.at(-1));
    expect(a).toEqual(b);
    expect(a).toHaveLength(4);
    for (const l of layersImage.layers) expect(blobGets.get(l.digest)).toBe(1);
    const last = events.at(-1)!;
    expect(last).toEqual({ layersDone: 4, layersTotal: 4, bytesDone: last.bytesTotal, bytesTotal: layersImage.layers.reduce((s, l) => s + l.size, 0) });
    for (let i = 1; i < events.length; i++) expect(events[i]!.bytesDone).toBeGreaterThanOrEqual(events[i - 1]!.bytesDone);
    expect(readFileSync(join(a[1]!.path, "data/keep.txt"), "utf8")).toBe("keep\n");
    expect(readdirSync(join(base, "c1", "tmp"))).toEqual([]);
    expect(cache.record(layerKey(layersImage.layers[0]!.diff_id))?.holders.sort()).toEqual(["ctr-a", "ctr-b"]);
    expect(cache.cachedDigests()).toEqual(expect.arrayContaining(layersImage.layers.flatMap((l) => [l.digest, l.diff_id])));
  });

  it("shares layers between the gzip and zstd twins of one image (same diff_ids), fetching each twin blob once to verify it", async () => {
    const zstd = await resolve("httpd-zstd");
    expect(zstd.layers.map((l) => l.diff_id)).toEqual(httpdImage.layers.map((l) => l.diff_id));
    const cache = await LayerCache.open(join(base, "twins"));
    const { fetch: f, blobGets, blobProbes } = countingFetch();
    const s = store(cache, f);
    const gz = await s.pull(httpdImage, { holder: "gz" });
    const zs = await s.pull(zstd, { holder: "zs" });
    expect(zs).toEqual(gz);
    // A blob never seen to produce a cached layer is checked against its diff_id before the directory serves it.
    for (const l of zstd.layers) expect(blobGets.get(l.digest)).toBe(1);
    await s.pull(zstd, { holder: "zs2" });
    for (const l of zstd.layers) expect([blobGets.get(l.digest), blobProbes.get(l.digest)]).toEqual([1, 1]);
  });

  it("pulls a zstd image on its own", async () => {
    const zstd = await resolve("httpd-zstd");
    const cache = await LayerCache.open(join(base, "zstd"));
    const layers = await store(cache).pull(zstd, { holder: "z" });
    expect(readFileSync(join(layers[1]!.path, "www/index.html"), "utf8")).toContain("berth httpd fixture");
  });

  it("keeps nothing of a layer whose diff_id does not match", async () => {
    const cache = await LayerCache.open(join(base, "bad"));
    const bad = { ...httpdImage, layers: httpdImage.layers.map((l, i) => (i === 1 ? { ...l, diff_id: `sha256:${"2".repeat(64)}` } : l)) };
    await expect(store(cache).pull(bad, { holder: "x" })).rejects.toMatchObject({ code: "DIFF_ID_MISMATCH" });
    expect(cache.has(layerKey(bad.layers[1]!.diff_id))).toBe(false);
    expect(readdirSync(join(base, "bad", "tmp"))).toEqual([]);
    expect(readdirSync(join(base, "bad", "layers"))).toEqual([layerKey(bad.layers[0]!.diff_id)]);
  });

  it("stops a layer at the instance's disk quota while it streams and keeps nothing of it", async () => {
    const cache = await LayerCache.open(join(base, "quota"));
    // The busybox base layer unpacks to about 2 MiB: over a 1 MiB quota.
    await expect(store(cache).pull(httpdImage, { holder: "x", diskQuotaMb: 1 })).rejects.toMatchObject({
      code: "IMAGE_TOO_LARGE", message: expect.stringMatching(/unpacks to more than [\d.]+ MiB, more than the disk quota of 1M \(1\.0 MiB\)$/),
    });
    expect(cache.has(layerKey(httpdImage.layers[0]!.diff_id))).toBe(false);
    expect(readdirSync(join(base, "quota", "tmp"))).toEqual([]);
    // Control: the same pull with room for it.
    await expect(store(cache).pull(httpdImage, { holder: "x", diskQuotaMb: 16 })).resolves.toHaveLength(httpdImage.layers.length);
  });

  it("fails with the registry's answer for a blob it does not have, leaving nothing behind", async () => {
    const cache = await LayerCache.open(join(base, "missing"));
    const missing = { ...httpdImage, layers: [{ ...httpdImage.layers[0]!, digest: `sha256:${"4".repeat(64)}` }] };
    await expect(store(cache).pull(missing, { holder: "x" })).rejects.toMatchObject({ name: "RegistryError", code: "not_found" });
    expect(readdirSync(join(base, "missing", "tmp"))).toEqual([]);
    expect(readdirSync(join(base, "missing", "layers"))).toEqual([]);
  });

  /** A fetch whose blob answers send their first chunk, then do `afterwards` with the stream (other answers pass as they are). */
  function blobsCutAfterFirstChunk(afterwards: (controller: ReadableStreamDefaultController<Uint8Array>) => Promise<void> | void): typeof fetch {
    return async (input, init) => {
      const res = await fetch(input, init);
      if (!/\/blobs\//.test(String(input instanceof Request ? input.url : input)) || res.body === null) return res;
      const reader = res.body.getReader();
      let sent = false;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent) return afterwards(controller);
          const { value } = await reader.read();
          sent = true;
          controller.enqueue(value!);
        },
        cancel: () => reader.cancel(),
      });
      return new Response(body, { status: res.status, headers: res.headers });
    };
  }

  it("a registry whose blob answer breaks off fails the pull FETCH_FAILED (not a corrupt layer), leaving nothing behind", async () => {
    const cache = await LayerCache.open(join(base, "broken-off"));
    // The first chunk of each blob arrives, then the connection is gone (undici's own words for a reset).
    const breaking = blobsCutAfterFirstChunk((controller) => controller.error(new TypeError("terminated")));
    await expect(store(cache, breaking).pull(httpdImage, { holder: "x" })).rejects.toMatchObject({
      code: "FETCH_FAILED", message: expect.stringMatching(/^layer sha256:[a-f0-9]{64}: the registry's answer broke off: terminated$/),
    });
    expect(readdirSync(join(base, "broken-off", "tmp"))).toEqual([]);
    expect(readdirSync(join(base, "broken-off", "layers"))).toEqual([]);
  });

  it("a pull aborted while a blob streams fails with the abort's reason, not a layer error", async () => {
    const cache = await LayerCache.open(join(base, "aborted"));
    const abort = new AbortController();
    const reason = new Error("the instance was stopped");
    // One chunk, then nothing until the abort.
    const stalling = blobsCutAfterFirstChunk(() => new Promise<void>(() => abort.abort(reason)));
    await expect(store(cache, stalling).pull(httpdImage, { holder: "x", signal: abort.signal })).rejects.toBe(reason);
    expect(readdirSync(join(base, "aborted", "tmp"))).toEqual([]);
  });
});

describe("LayerCache across restarts", () => {
  it("keeps layers and holders, and clears what a crash left", async () => {
    const root = join(base, "restart");
    const first = await LayerCache.open(root);
    const pulled = await store(first).pull(httpdImage, { holder: "ctr-1" });
    // What a crash mid-pull leaves: an extraction in tmp/ and a renamed directory whose record was never saved.
    mkdirSync(join(root, "tmp", "sha256-dead-123"), { recursive: true });
    writeFileSync(join(root, "tmp", "sha256-dead-123", "partial"), "half a layer");
    mkdirSync(join(root, "layers", `sha256-${"3".repeat(64)}`));

    const again = await LayerCache.open(root);
    expect(readdirSync(join(root, "tmp"))).toEqual([]);
    expect(existsSync(join(root, "layers", `sha256-${"3".repeat(64)}`))).toBe(false);
    for (const l of pulled) expect(again.record(layerKey(l.diffId))?.holders).toEqual(["ctr-1"]);
    const { fetch: f, blobGets } = countingFetch();
    await store(again, f).pull(httpdImage, { holder: "ctr-2" });
    expect(blobGets.size).toBe(0);
  });
});

describe("garbage collection", () => {
  it("plans least recently used, unheld layers until under the threshold", () => {
    const layers = [
      { key: "old", sizeBytes: 10, lastUsedMs: 1, inUse: false },
      { key: "held", sizeBytes: 10, lastUsedMs: 0, inUse: true },
      { key: "new", sizeBytes: 10, lastUsedMs: 5, inUse: false },
      { key: "mid", sizeBytes: 10, lastUsedMs: 3, inUse: false },
    ];
    expect(planEviction(layers, 40)).toEqual([]);
    expect(planEviction(layers, 25)).toEqual(["old", "mid"]);
    expect(planEviction(layers, 0)).toEqual(["old", "mid", "new"]);
  });

  it("resolves the cache budget from bytes or a percentage of the filesystem, and refuses anything else", () => {
    expect(cacheBudgetBytes(5_000_000, 1e12)).toBe(5_000_000);
    expect(cacheBudgetBytes("50%", 1000)).toBe(500);
    expect(cacheBudgetBytes("12.5%", 1000)).toBe(125);
    expect(() => cacheBudgetBytes("lots", 1000)).toThrow(/must be bytes or a percentage/);
    expect(() => cacheBudgetBytes("150%", 1000)).toThrow(/must be bytes or a percentage/);
  });

});
