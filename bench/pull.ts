/**
 * Pull + unpack, Berth against skopeo + umoci, in the same run on the same
 * loopback registry (Debian's docker-registry):
 * - cold: resolve the image, pull every layer and have a mounted root
 *   filesystem (Berth: ImageStore + RootfsManager) vs `skopeo copy
 *   docker://… oci:…` then `umoci unpack` (target: Berth ≥ 1.5× faster);
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
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { LayerCache } from "../agent/images/layer-cache";
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

    const manager = await RootfsManager.open(join(base, "rootfs"), { spares: 2 });
    try {
      await measure(ref, base, manager);
    } finally {
      await manager.close();
    }
  } finally {
    await registry.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

async function measure(ref: string, base: string, manager: RootfsManager) {
  {
    await manager.prewarm(DISK_MB);
    const berth: number[] = [];
    const peer: number[] = [];
    // CPU time too: this machine is shared, and wall time swings with everyone else's load.
    const berthCpu: number[] = [];
    const peerCpu: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      // Berth cold: empty cache, resolve + pull + mounted root filesystem.
      const cache = await LayerCache.open(join(base, `cache-${r}`));
      const store = loopbackImageStore(cache);
      let t = performance.now();
      let cpu = selfCpuMs();
      const image = await resolveInstanceImage(ref);
      const layers = await store.pull(image, { holder: `cold-${r}` });
      const rootfs = await manager.create(`cold-${r}`, layers.map((l) => l.path), { ids: IDS, diskMb: DISK_MB });
      berth.push(performance.now() - t);
      berthCpu.push(selfCpuMs() - cpu);
      await rootfs.destroy();
      await manager.prewarm(DISK_MB);

      // Peer: skopeo copy to an OCI layout, umoci unpack to a bundle.
      const dir = join(base, `peer-${r}`);
      mkdirSync(dir);
      t = performance.now();
      cpu = childrenCpuMs();
      await run("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${ref}`, `oci:${dir}/layout:t`]);
      await run("umoci", ["unpack", "--image", `${dir}/layout:t`, `${dir}/bundle`]);
      peer.push(performance.now() - t);
      peerCpu.push(childrenCpuMs() - cpu);
      rmSync(dir, { recursive: true, force: true });
      if (r < RUNS - 1) rmSync(join(base, `cache-${r}`), { recursive: true, force: true });
      console.log(`cold run ${r + 1}: berth ${ms(berth.at(-1)!)} (cpu ${ms(berthCpu.at(-1)!)}), skopeo+umoci ${ms(peer.at(-1)!)} (cpu ${ms(peerCpu.at(-1)!)})`);
    }
    console.log(`cold pull + unpack (median of ${RUNS}): berth ${ms(median(berth))}, skopeo+umoci ${ms(median(peer))}, ratio ${(median(peer) / median(berth)).toFixed(2)}x (target >= 1.5x)`);
    console.log(`cold CPU time (median): berth ${ms(median(berthCpu))}, skopeo+umoci ${ms(median(peerCpu))}, ratio ${(median(peerCpu) / median(berthCpu)).toFixed(2)}x; load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} on ${availableParallelism()} cores`);

    // Warm: every layer cached (the last cold run's cache), to a mounted root filesystem.
    const cache = await LayerCache.open(join(base, `cache-${RUNS - 1}`));
    const store = loopbackImageStore(cache);
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
