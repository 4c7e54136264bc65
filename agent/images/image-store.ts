/**
 * @module Pulls an instance's image into the layer cache: every missing layer
 * is fetched in parallel through the shared registry session (references,
 * auth, redirects; undici's fetch from registry-fetch.ts underneath) and
 * streamed by layer-stream.ts into its cache directory, verified on the way.
 * Reports progress (bytes and layers done) and records which container
 * holds which layers. What it writes is charged to the layer cache's budget
 * (cache-budget.ts), which evicts unused layers to make room or refuses.
 *
 * @example
 * const store = new ImageStore({ cache, fetch, schemesFor: (host) => registrySchemes(host, insecure, { canSkipTlsVerify: true }), listedRegistries: listedRegistries(access), budget, ...limits });
 * const { layers } = await store.pull(spec.image, { holder: spec.instance_guid, onProgress });
 */
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { InstanceImage, Layer } from "../../shared/protocol/image";
import { parseReference } from "../../shared/registry/reference";
import { blobRequest, openRegistrySession, type RegistrySession, type Scheme } from "../../shared/registry/session";
import { LayerError } from "./layer-error";
import type { CacheBudget, LayerCharge } from "./cache-budget";
import { ImageBudget, type ImageLimits } from "./image-budget";
import { layerKey, type FilledLayer, type LayerCache } from "./layer-cache";
import { unpackLayer } from "./layer-stream";

export interface PullProgress {
  layersDone: number;
  layersTotal: number;
  /** Compressed bytes downloaded in this pull (cached layers count as done without bytes). */
  bytesDone: number;
  /** Compressed bytes of the layers this pull has to download. */
  bytesTotal: number;
}

/** What a hostile or huge image may take: each cap fails the pull with a LayerError. */
export interface PullLimits {
  /** The largest single file a layer may hold. */
  maxFileBytes: number;
  /** Cap on one layer's uncompressed size (decompression bombs). */
  maxUncompressedBytes: number;
  /** Entries one layer may hold (per-entry bookkeeping grows with them). */
  maxLayerEntries: number;
  /** What one image may take over all its layers: entries (inodes) and uncompressed bytes. */
  image: ImageLimits;
}

/**
 * The cell's limits. Real images stay far below them (a large Debian or
 * Python layer holds some 50k entries); the entry caps bound the agent's
 * memory per layer and the inodes per image.
 */
export const DEFAULT_PULL_LIMITS: PullLimits = {
  maxFileBytes: 8 * 1024 ** 3,
  maxUncompressedBytes: 8 * 1024 ** 3,
  maxLayerEntries: 250_000,
  image: { maxEntries: 1_000_000, maxBytes: 16 * 1024 ** 3 },
};

export interface ImageStoreOptions extends PullLimits {
  cache: LayerCache;
  fetch: typeof fetch;
  /** Which schemes to try for a registry host (shared/registry registrySchemes). */
  schemesFor: (host: string) => Scheme[];
  /** The admin's listed registries (shared/registry/targets.ts): the only inward hosts pulls may reach. */
  listedRegistries: readonly string[];
  /** The layer cache's budget, shared by every store of the cache. */
  budget: CacheBudget;
  /** Layers downloaded at once. */
  concurrency?: number;
  requestTimeoutMs?: number;
}

export interface PullOptions {
  /** Who will hold the layers (a container id): recorded before garbage collection can run. */
  holder: string;
  onProgress?: (p: PullProgress) => void;
  signal?: AbortSignal;
  /** The chown fallback (no idmapped mounts): layers extracted with ids shifted by this much. */
  idShift?: number;
  /** The instance's disk quota, which the unpacked image may not pass (the layer passing it stops there). */
  diskQuotaMb?: number;
}

export interface PulledLayer {
  diffId: string;
  /** The cached lower directory. */
  path: string;
}

export class ImageStore {
  constructor(private readonly opts: ImageStoreOptions) {}

  /** Pulls every layer of `image` (bottom-most first in the result) and records `holder` on them. */
  async pull(image: InstanceImage, opts: PullOptions): Promise<PulledLayer[]> {
    const { cache } = this.opts;
    const shift = opts.idShift ?? 0;
    const keys = image.layers.map((l) => layerKey(l.diff_id, shift));
    // Layers this pull will hold are not evicted to make room for others.
    this.opts.budget.pin(keys);
    try {
      const missing = image.layers.filter((_, i) => !cache.has(keys[i]!));
      const budget = this.budgetOf(image, keys.filter((k) => cache.has(k)), opts.diskQuotaMb);
      const progress: PullProgress = {
        layersDone: image.layers.length - missing.length,
        layersTotal: image.layers.length,
        bytesDone: 0,
        bytesTotal: missing.reduce((sum, l) => sum + l.size, 0),
      };
      opts.onProgress?.({ ...progress });
      let session: Promise<RegistrySession> | undefined;
      const openSession = () => (session ??= this.openSession(image, opts.signal));

      const paths = await mapLimit(image.layers, this.opts.concurrency ?? 4, async (layer, i) => {
        let counted = 0;
        const onBytes = (n: number) => {
          counted += n;
          progress.bytesDone += n;
          opts.onProgress?.({ ...progress });
        };
        const charge = this.opts.budget.charge(layer.digest);
        const { path, filled } = await cache
          .ensure(keys[i]!, layer.digest, (tmp) => this.download(layer, tmp, openSession, shift, onBytes, budget, charge, opts))
          .finally(() => charge.done());
        if (!filled) await this.proveAccess(layer, openSession);
        if (missing.includes(layer)) {
          // A layer another pull was already fetching arrives without passing through onBytes.
          progress.bytesDone += layer.size - counted;
          progress.layersDone++;
          opts.onProgress?.({ ...progress });
        }
        return path;
      });
      // Layers another pull filled were not charged as they arrived: the whole image is checked again.
      this.budgetOf(image, keys, opts.diskQuotaMb);
      await cache.acquire(opts.holder, keys);
      return image.layers.map((l, i) => ({ diffId: l.diff_id, path: paths[i]! }));
    } finally {
      this.opts.budget.unpin(keys);
    }
  }

  /** Drops `holder`'s references (the container is gone): its layers may be evicted from now on. */
  async release(holder: string): Promise<void> {
    await this.opts.cache.release(holder);
  }

  /** A budget for the image with the cached `keys` already charged (throws if they alone are over). */
  private budgetOf(image: InstanceImage, keys: readonly string[], diskQuotaMb?: number): ImageBudget {
    const budget = new ImageBudget(this.opts.image, image.ref, diskQuotaMb);
    for (const k of new Set(keys)) {
      const r = this.opts.cache.record(k);
      if (r) budget.charge(r.entries, r.sizeBytes);
    }
    return budget;
  }

  private openSession(image: InstanceImage, signal?: AbortSignal): Promise<RegistrySession> {
    const ref = parseReference(image.ref);
    return openRegistrySession(ref, {
      fetch: this.opts.fetch,
      schemes: this.opts.schemesFor(ref.host),
      listedRegistries: this.opts.listedRegistries,
      ...(image.credentials ? { credentials: image.credentials } : {}),
      ...(signal ? { signal } : {}),
      ...(this.opts.requestTimeoutMs ? { requestTimeoutMs: this.opts.requestTimeoutMs } : {}),
    });
  }

  /**
   * A cached layer serves this pull only if its own registry, with its own
   * credentials, serves the blob (Kubernetes' "ensure secret pulled images"):
   * the cache must not hand one tenant another's private layer. One byte is
   * asked for; the answer's status is what counts.
   */
  private async proveAccess(layer: Layer, openSession: () => Promise<RegistrySession>): Promise<void> {
    try {
      const res = await blobRequest(await openSession(), layer.digest, { range: "bytes=0-0" });
      await res.body?.cancel();
    } catch (err) {
      throw new LayerError("ACCESS_DENIED", `layer ${layer.digest} is cached but its registry did not serve it to this pull: ${(err as Error).message}`, { cause: err });
    }
  }

  private async download(
    layer: Layer,
    dir: string,
    openSession: () => Promise<RegistrySession>,
    idShift: number,
    onBytes: (n: number) => void,
    image: ImageBudget,
    cache: LayerCharge,
    opts: PullOptions,
  ): Promise<FilledLayer> {
    const res = await blobRequest(await openSession(), layer.digest);
    if (!res.body) throw new LayerError("FETCH_FAILED", `the registry sent no body for layer ${layer.digest}`);
    const result = await unpackLayer(bodyChunks(res.body as WebReadableStream<Uint8Array>, layer.digest, opts.signal), layer, dir, {
      maxFileBytes: this.opts.maxFileBytes,
      maxUncompressedBytes: this.opts.maxUncompressedBytes,
      maxEntries: this.opts.maxLayerEntries,
      image,
      cache,
      idShift,
      onCompressedBytes: onBytes,
    });
    return { sizeBytes: result.uncompressedBytes, entries: result.entries };
  }
}

/**
 * The chunks of a response body, read straight from its stream (no Node
 * stream in between). An abort of `signal` cancels the read and throws its
 * reason; a body that breaks off (the connection reset, a read timeout) is
 * FETCH_FAILED for `digest`, not a corrupt layer; a consumer that stops early
 * cancels the body, which frees the connection.
 */
async function* bodyChunks(body: WebReadableStream<Uint8Array>, digest: string, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  const cancel = () => void reader.cancel(signal?.reason).catch(() => undefined);
  signal?.addEventListener("abort", cancel, { once: true });
  let ended = false;
  try {
    for (;;) {
      signal?.throwIfAborted();
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (err) {
        signal?.throwIfAborted();
        throw new LayerError("FETCH_FAILED", `layer ${digest}: the registry's answer broke off: ${(err as Error).message}`, { cause: err });
      }
      signal?.throwIfAborted();
      const { done, value } = next;
      if (done) {
        ended = true;
        return;
      }
      yield value;
    }
  } finally {
    signal?.removeEventListener("abort", cancel);
    if (!ended) await reader.cancel().catch(() => undefined);
  }
}

/**
 * Runs fn over items with at most `limit` at once, keeping order. After a
 * failure no new item starts, and the first error is thrown only once the
 * running ones have settled: a failed pull leaves no work behind it.
 */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  const errors: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length && errors.length === 0) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length) throw errors[0];
  return out;
}
