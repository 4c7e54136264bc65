/**
 * Image metadata resolution (what staging does), Berth's shared client
 * against skopeo (`skopeo inspect`, which also fetches the manifest and the
 * config blob), on the same loopback registry in the same run: anonymous, and
 * behind bearer-token auth (one token fetch per resolution for both).
 * skopeo's figure includes its process start; Berth's runs in-process, as the
 * Worker's and the cell's resolutions do.
 *
 * Run: `npx tsx bench/resolve.ts [--runs 20]`.
 */
import { execFile } from "node:child_process";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { resolveImage } from "../shared/registry/resolve";
import { buildAndPushFixtures } from "../test/fixtures/build-images";
import { startRegistry } from "../test/support/registry";

const run = promisify(execFile);
const i = process.argv.indexOf("--runs");
const RUNS = i >= 0 ? Number(process.argv[i + 1]) : 20;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function time(fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up
  const samples: number[] = [];
  for (let n = 0; n < RUNS; n++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return median(samples);
}

const anon = await startRegistry();
await buildAndPushFixtures(anon.host);
const token = await startRegistry({ storageDir: anon.storageDir, auth: { kind: "token", username: "bench", password: "bench-pw" } });
const creds = { username: "bench", password: "bench-pw" };
try {
  const rows: [string, number, number][] = [];
  for (const image of ["httpd", "multi-arch"]) {
    rows.push([`anonymous ${image}`,
      await time(() => resolveImage(`${anon.host}/${image}`, { fetch, schemes: ["http"], listedRegistries: ["127.0.0.1"] })),
      await time(() => run("skopeo", ["inspect", "--tls-verify=false", `docker://${anon.host}/${image}`]))]);
  }
  rows.push(["token auth httpd",
    await time(() => resolveImage(`${token.host}/httpd`, { fetch, schemes: ["http"], listedRegistries: ["127.0.0.1"], credentials: creds })),
    await time(() => run("skopeo", ["inspect", "--tls-verify=false", "--creds", "bench:bench-pw", `docker://${token.host}/httpd`]))]);

  console.log(`median of ${RUNS} runs, ms`);
  console.log("case                   berth   skopeo   skopeo/berth");
  for (const [name, berth, skopeo] of rows) {
    console.log(`${name.padEnd(22)} ${berth.toFixed(1).padStart(6)} ${skopeo.toFixed(1).padStart(8)} ${(skopeo / berth).toFixed(1).padStart(10)}x`);
  }
} finally {
  await Promise.all([anon.stop(), token.stop()]);
}
