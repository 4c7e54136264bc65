/**
 * Pull + unpack, Berth against skopeo + umoci, in the same run on the same
 * loopback registry (Debian's docker-registry):
 * - cold: resolve the image, pull every layer and have a mounted root
 *   filesystem (Berth: ImageStore + RootfsManager with the cell's registry
 *   fetch) vs `skopeo copy docker://… oci:…` then `umoci unpack` (goal:
 *   Berth ≥ 2.5× faster),
 *   with Berth's phases (resolve, layers, mount), its MB/s against the
 *   limit's (`cat layer.tar.gz | gunzip | sha256sum` over the same blobs),
 *   and the agent's event-loop delay while it pulls (the unpacking runs on
 *   worker threads, so heartbeats and the API keep being served);
 * - warm: every layer cached, to a mounted root filesystem (target < 20 ms).
 *
 * The image is generated here: several layers, ≥ 100 MB uncompressed, a mix
 * of random (incompressible) files and many small compressible ones.
 *
 * Run as root: `npx tsx bench/pull.ts [--runs 3] [--warm-runs 20]`.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { LayerCache } from "../agent/images/layer-cache";
import { unpackLayer } from "../agent/images/layer-stream";
import { createRegistryFetch } from "../agent/images/registry-fetch";
import { RootfsManager } from "../agent/rootfs/rootfs-manager";
import { loopbackImageStore, resolveInstanceImage } from "../test/fixtures/layers/harness";
import { pushOciImage, writeOciImage } from "../test/fixtures/layers/oci-image";
import { tarBuffer, type TarEntry } from "../test/fixtures/layers/tar";
import { startRegistry } from "../test/support/registry";

const run = promisify(execFile);
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const RUNS = arg("runs", 3);
const WARM_RUNS = arg("warm-runs", 20);
const IDS = { hostId: 500000, size: 65536 };
const DISK_MB = 256;

/** Text-like data: compresses roughly 4:1 like source trees and libraries do. */
function compressible(bytes: number, seed: number): Buffer {
  const words = ["layer", "berth", "overlay", "registry", "digest", "container", "namespace", "cgroup", "mount", "socket"];
  const out: string[] = [];
  let n = 0;
  let x = seed;
  while (n < bytes) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const w = `${words[x % words.length]}${x % 997} `;
    out.push(w);
    n += w.length;
  }
  return Buffer.from(out.join("").slice(0, bytes));
}

async function buildLayers(): Promise<Buffer[]> {
  const layers: TarEntry[][] = [];
  for (let l = 0; l < 2; l++) {
    // Incompressible: like binaries and already-compressed assets.
    layers.push([{ type: "directory", name: `opt${l}` }, ...Array.from({ length: 4 }, (_, i): TarEntry => ({ type: "file", name: `opt${l}/blob${i}.bin`, body: randomBytes(5 << 20) }))]);
  }
  for (let l = 0; l < 3; l++) {
    // Many small compressible files: like a language runtime's library tree.
    const entries: TarEntry[] = [{ type: "directory", name: `lib${l}` }];
    for (let d = 0; d < 20; d++) {
      entries.push({ type: "directory", name: `lib${l}/pkg${d}` });
      for (let f = 0; f < 50; f++) entries.push({ type: "file", name: `lib${l}/pkg${d}/mod${f}.txt`, body: compressible(20_000, l * 100_000 + d * 100 + f) });
    }
    layers.push(entries);
  }
  return Promise.all(layers.map((e) => tarBuffer(e)));
}

/** CPU seconds of this process's reaped children (utime + stime of /proc/self/stat, fields 16 and 17, in clock ticks of 100 Hz). */
function childrenCpuMs(): number {
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[13]) + Number(fields[14])) * 10;
}
const selfCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))]!;
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function main() {
  const base = mkdtempSync(join(tmpdir(), "berth-bench-pull-"));
  chmodSync(base, 0o755);
  const registry = await startRegistry();
  try {
    const tarballs = await buildLayers();
    const uncompressed = tarballs.reduce((s, t) => s + t.length, 0);
    const layout = join(base, "layout");
    await writeOciImage(layout, "latest", tarballs, "gzip");
    await pushOciImage(layout, "latest", registry.host, "bench-big");
    const ref = `${registry.host}/bench-big:latest`;
    console.log(`image: ${tarballs.length} layers, ${(uncompressed / 1e6).toFixed(1)} MB uncompressed, registry ${registry.url}`);

    const limitMs = await limit(layout, tarballs.length, uncompressed);
    const manager = await RootfsManager.open(join(base, "rootfs"), { spares: 2 });
    const cellFetch = createRegistryFetch({ insecureRegistries: [registry.host] });
    try {
      await stages(ref, registry.url, layout, base, cellFetch.fetch);
      await measure(ref, base, manager, cellFetch.fetch, { limitMs, uncompressed });
    } finally {
      await cellFetch.close();
      await manager.close();
    }
  } finally {
    await registry.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

/** The limit on this machine: `cat blob | gunzip | sha256sum` over every layer blob, one after another. */
async function limit(layout: string, layerCount: number, uncompressed: number): Promise<number> {
  const manifest = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")).manifests[0].digest.slice(7);
  const layers = (JSON.parse(readFileSync(join(layout, "blobs/sha256", manifest), "utf8")).layers as { digest: string; size: number }[]).slice(0, layerCount);
  const compressed = layers.reduce((s, l) => s + l.size, 0);
  const t = performance.now();
  for (const l of layers) await run("sh", ["-c", `cat "$1" | gunzip | sha256sum > /dev/null`, "sh", join(layout, "blobs/sha256", l.digest.slice(7))]);
  const sec = (performance.now() - t) / 1000;
  console.log(`limit: cat layer.tar.gz | gunzip | sha256sum over ${layers.length} layers: ${ms(sec * 1000)}, ${(compressed / 1e6 / sec).toFixed(0)} MB/s compressed, ${(uncompressed / 1e6 / sec).toFixed(0)} MB/s uncompressed`);
  return sec * 1000;
}

/**
 * Where a cold pull's time goes, stage by stage over the same blobs, one
 * layer after another: the HTTP client draining each blob, then the addon's
 * worker (digests, decompression, tar parsing with its file writes) fed
 * from memory. The cold pull runs these at once: four layers in parallel,
 * each blob's download overlapping its unpacking.
 */
async function stages(ref: string, registryUrl: string, layout: string, base: string, cellFetch: typeof fetch): Promise<void> {
  const image = await resolveInstanceImage(ref);
  const repo = ref.slice(ref.indexOf("/") + 1, ref.lastIndexOf(":"));
  let t = performance.now();
  let cpu = selfCpuMs();
  for (const l of image.layers) {
    const res = await cellFetch(`${registryUrl}/v2/${repo}/blobs/${l.digest}`);
    for await (const _ of res.body as unknown as AsyncIterable<Uint8Array>);
  }
  const fetchMs = performance.now() - t;
  const fetchCpu = selfCpuMs() - cpu;
  const worker = { hash: 0, decompress: 0, extract: 0 };
  t = performance.now();
  cpu = selfCpuMs();
  for (const [i, l] of image.layers.entries()) {
    const blob = readFileSync(join(layout, "blobs/sha256", l.digest.slice(7)));
    const chunks = Array.from({ length: Math.ceil(blob.length / 65536) }, (_, c) => blob.subarray(c * 65536, (c + 1) * 65536));
    const dir = join(base, `stages-${i}`);
    mkdirSync(dir);
    const r = await unpackLayer(chunks, l, dir, { maxFileBytes: 2 ** 40, maxUncompressedBytes: 2 ** 40, maxEntries: 1e6 });
    for (const k of ["hash", "decompress", "extract"] as const) worker[k] += r.workerMs[k];
    rmSync(dir, { recursive: true, force: true });
  }
  const unpackMs = performance.now() - t;
  const unpackCpu = selfCpuMs() - cpu;
  console.log(`stages, one layer after another: fetch (HTTP client, blob drained) ${ms(fetchMs)} (cpu ${ms(fetchCpu)}); ` +
    `unpack from memory ${ms(unpackMs)} (cpu ${ms(unpackCpu)}): worker thread in digests ${ms(worker.hash)}, decompression ${ms(worker.decompress)}, ` +
    `tar + file writes ${ms(worker.extract)}`);
}

interface ColdRun {
  ms: number;
  cpuMs: number;
  phases: { resolve: number; layers: number; mount: number };
  /** The event loop's worst and p99 delay during the pull (ms), and the share of it the loop was busy (the rest it waited for I/O or timers). */
  loopDelay: { max: number; p99: number; busy: number };
}

/** Berth cold: empty cache, resolve + pull + mounted root filesystem. */
async function berthCold(ref: string, base: string, manager: RootfsManager, fetch: typeof globalThis.fetch, name: string): Promise<ColdRun> {
  const cache = await LayerCache.open(join(base, `cache-${name}`));
  const store = loopbackImageStore(cache, { fetch });
  const delay = monitorEventLoopDelay({ resolution: 10 });
  const t0 = performance.now();
  const cpu = selfCpuMs();
  const image = await resolveInstanceImage(ref);
  const t1 = performance.now();
  // The pull alone: the mount phase's calls are synchronous by design (a few ms each).
  delay.enable();
  const elu = performance.eventLoopUtilization();
  const layers = await store.pull(image, { holder: name });
  const busy = performance.eventLoopUtilization(elu).utilization;
  delay.disable();
  const t2 = performance.now();
  const rootfs = await manager.create(name, layers.map((l) => l.path), { ids: IDS, diskMb: DISK_MB });
  const t3 = performance.now();
  const loopDelay = { max: delay.max / 1e6, p99: delay.percentile(99) / 1e6, busy };
  const run = { ms: t3 - t0, cpuMs: selfCpuMs() - cpu, phases: { resolve: t1 - t0, layers: t2 - t1, mount: t3 - t2 }, loopDelay };
  await rootfs.destroy();
  await manager.prewarm(DISK_MB);
  return run;
}

/** The event loop's delay with nothing to do, on this machine now: what a pull's delay is held against. */
async function idleLoopDelay(ms: number): Promise<{ max: number; p99: number }> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  await new Promise((resolve) => setTimeout(resolve, ms));
  delay.disable();
  return { max: delay.max / 1e6, p99: delay.percentile(99) / 1e6 };
}

async function measure(ref: string, base: string, manager: RootfsManager, cellFetch: typeof fetch, data: { limitMs: number; uncompressed: number }) {
  {
    const idle = await idleLoopDelay(2000);
    await manager.prewarm(DISK_MB);
    const berth: ColdRun[] = [];
    const peer: number[] = [];
    // CPU time too: this machine is shared, and wall time swings with everyone else's load.
    const peerCpu: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      berth.push(await berthCold(ref, base, manager, cellFetch, `cold-${r}`));

      // Peer: skopeo copy to an OCI layout, umoci unpack to a bundle.
      const dir = join(base, `peer-${r}`);
      mkdirSync(dir);
      const t = performance.now();
      const cpu = childrenCpuMs();
      await run("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${ref}`, `oci:${dir}/layout:t`]);
      await run("umoci", ["unpack", "--image", `${dir}/layout:t`, `${dir}/bundle`]);
      peer.push(performance.now() - t);
      peerCpu.push(childrenCpuMs() - cpu);
      rmSync(dir, { recursive: true, force: true });
      if (r < RUNS - 1) rmSync(join(base, `cache-cold-${r}`), { recursive: true, force: true });
      const b = berth.at(-1)!;
      console.log(`cold run ${r + 1}: berth ${ms(b.ms)} (cpu ${ms(b.cpuMs)}; resolve ${ms(b.phases.resolve)}, layers ${ms(b.phases.layers)}, mount ${ms(b.phases.mount)}; event-loop delay p99 ${ms(b.loopDelay.p99)}, max ${ms(b.loopDelay.max)}, loop busy ${(b.loopDelay.busy * 100).toFixed(0)}%), ` +
        `skopeo+umoci ${ms(peer.at(-1)!)} (cpu ${ms(peerCpu.at(-1)!)})`);
    }
    const med = (runs: ColdRun[], f: (r: ColdRun) => number) => median(runs.map(f));
    const berthMs = med(berth, (r) => r.ms);
    console.log(`cold pull + unpack (median of ${RUNS}): berth ${ms(berthMs)}, skopeo+umoci ${ms(median(peer))}, ratio ${(median(peer) / berthMs).toFixed(2)}x (goal >= 2.5x)`);
    const mbps = (t: number) => `${(data.uncompressed / 1e3 / t).toFixed(0)} MB/s`;
    console.log(`berth phases (median): resolve ${ms(med(berth, (r) => r.phases.resolve))}, layers fetched, verified and unpacked in parallel ${ms(med(berth, (r) => r.phases.layers))}, rootfs mount ${ms(med(berth, (r) => r.phases.mount))}; ` +
      `berth ${mbps(berthMs)} uncompressed against the limit's ${mbps(data.limitMs)} (gunzip + sha256 alone, one layer after another)`);
    console.log(`agent event-loop delay while the layers were pulled (median of runs): p99 ${ms(med(berth, (r) => r.loopDelay.p99))}, max ${ms(med(berth, (r) => r.loopDelay.max))} (at 10 ms resolution), loop busy ${(med(berth, (r) => r.loopDelay.busy) * 100).toFixed(0)}% of the pull (the rest it waited: the work is on worker threads); idle for 2 s just before: p99 ${ms(idle.p99)}, max ${ms(idle.max)}`);
    console.log(`cold CPU time (median): berth ${ms(med(berth, (r) => r.cpuMs))}, skopeo+umoci ${ms(median(peerCpu))}, ratio ${(median(peerCpu) / med(berth, (r) => r.cpuMs)).toFixed(2)}x; load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} on ${availableParallelism()} cores`);

    // Warm: every layer cached (the last cold run's cache), to a mounted root filesystem.
    const cache = await LayerCache.open(join(base, `cache-cold-${RUNS - 1}`));
    const store = loopbackImageStore(cache, { fetch: cellFetch });
    const image = await resolveInstanceImage(ref);
    const warm: number[] = [];
    for (let r = 0; r < WARM_RUNS; r++) {
      await manager.prewarm(DISK_MB);
      const t = performance.now();
      const layers = await store.pull(image, { holder: `warm-${r}` });
      const rootfs = await manager.create(`warm-${r}`, layers.map((l) => l.path), { ids: IDS, diskMb: DISK_MB });
      warm.push(performance.now() - t);
      await rootfs.destroy();
      await store.release(`warm-${r}`);
    }
    console.log(`warm (all layers cached) to a mounted rootfs, ${WARM_RUNS} runs: median ${ms(median(warm))}, p90 ${ms(p90(warm))} (target < 20 ms)`);
  }
}

await main();
