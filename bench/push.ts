/**
 * Push to first 200: `cf push APP --docker-image` (the real cf CLI) and
 * `berth push APP -o` (the built CLI, dist/cli) against the same local stack
 * (wrangler dev, one cell, the router), the image already cached on the cell.
 * Each run times from the push command's start to the first 200 through the
 * router (polled every 20 ms while the push runs), then deletes the app with
 * its route. p50 of N per CLI, and their ratio. For berth it also prints
 * where the time went: the p50 moment each step of the push was answered
 * (from BERTH_TRACE), so a change can be aimed at the longest gap.
 *
 * Usage (root, after npm run build): npx tsx bench/push.ts [--runs 10]
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildAndPushFixtures } from "../test/fixtures/build-images";
import { cfSession } from "../test/support/cf-cli";
import { startRegistry } from "../test/support/registry";
import { getVia, startOneCellStack } from "../test/support/stack";
import { arg } from "./args";

const RUNS = arg("runs", 10);
const BERTH = resolve(import.meta.dirname, "../dist/cli/berth.js");
if (!existsSync(BERTH)) throw new Error(`${BERTH} is missing: npm run build first`);
const START = "exec /bin/busybox httpd -f -p $PORT -h /www";
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

const registry = await startRegistry();
await buildAndPushFixtures(registry.host);
const stack = await startOneCellStack({ name: `bench-push-${process.pid}`, registryHost: registry.host, portMin: 45000, portMax: 45999 });
const image = `${registry.host}/httpd:latest`;

const cf = await cfSession();
await cf.ok("api", stack.cp.url, "--skip-ssl-validation");
await cf.ok("auth", "admin", stack.cp.adminPassword);
await cf.ok("create-space", "bench", "-o", "default");
await cf.ok("target", "-o", "default", "-s", "bench");
await cf.ok("enable-feature-flag", "diego_docker");

const berthHome = await mkdtemp(join(tmpdir(), "berth-bench-home-"));
/** Runs the built CLI; resolves with its stderr, where BERTH_TRACE puts one line per request. */
const berth = (...args: string[]) => new Promise<string>((res, rej) => {
  execFile(process.execPath, [BERTH, ...args], { env: { ...process.env, BERTH_HOME: berthHome, BERTH_TRACE: "true" } }, (err, _stdout, stderr) => (err ? rej(new Error(`berth ${args.join(" ")}: ${stderr}`)) : res(stderr)));
});

/** The steps of a berth push, each the first (or last) traced request matching it. */
const STEPS: [name: string, pattern: RegExp, which: "first" | "last"][] = [
  ["first request answered", /./, "first"],
  ["apply_manifest answered (202)", /^POST \/v3\/spaces\/\S+\/actions\/apply_manifest /, "first"],
  ["manifest applied (job COMPLETE)", /^GET \/v3\/jobs\//, "last"],
  ["package created", /^POST \/v3\/packages /, "first"],
  ["build created", /^POST \/v3\/builds /, "first"],
  ["staged, droplet set", /^PATCH \/v3\/apps\/\S+\/relationships\/current_droplet /, "first"],
  ["restart answered", /^POST \/v3\/apps\/\S+\/actions\/restart /, "first"],
];
const steps: Record<string, number[]> = Object.fromEntries(STEPS.map(([name]) => [name, []]));
let lastTrace = "";

/** ms from `t0` (epoch ms) to each step, from the trace lines. */
function stepTimes(trace: string, t0: number): void {
  lastTrace = trace.split("\n").filter((l) => /^\S+Z /.test(l)).map((l) => `${Date.parse(l.slice(0, l.indexOf(" "))) - t0} ms ${l.slice(l.indexOf(" ") + 1)}`).join("\n");
  const lines = trace.split("\n").map((l) => /^(\S+Z) (.*)$/.exec(l)).filter((m) => m !== null);
  for (const [name, pattern, which] of STEPS) {
    const hits = lines.filter((m) => pattern.test(m[2]!));
    const hit = which === "first" ? hits[0] : hits.at(-1);
    if (hit) steps[name]!.push(Date.parse(hit[1]!) - t0);
  }
}
await berth("api", stack.cp.url);
await berth("login", "-t", stack.cp.adminToken);
await berth("target", "-s", "bench");

const pushers = {
  cf: { push: (app: string) => cf.ok("push", app, "--docker-image", image, "-c", START, "-m", "32M", "-k", "32M"), del: (app: string) => cf.ok("delete", app, "-r", "-f") },
  berth: { push: (app: string) => {
    const t0 = Date.now();
    return berth("push", app, "-o", image, "-c", START, "-m", "32M", "-k", "32M").then((trace) => stepTimes(trace, t0));
  }, del: async (app: string) => {
    await berth("delete", app, "-f");
    await berth("delete-route", app);
  } },
};

/** ms from the push's start to the first 200 through the router. */
async function timeOne(tool: keyof typeof pushers, app: string): Promise<number> {
  const t0 = performance.now();
  let pushDone = false;
  const push = pushers[tool].push(app).finally(() => (pushDone = true));
  for (;;) {
    const r = await getVia(stack.router.port, `${app}.apps.localhost`).catch(() => ({ status: 0 }));
    if (r.status === 200) break;
    if (pushDone) await push; // a failed push throws here
    if (performance.now() - t0 > 120_000) throw new Error(`${tool}: no 200 for ${app} within 120 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - t0;
  await push;
  await pushers[tool].del(app);
  return ms;
}

try {
  // The first push pulls the image into the cell's cache; it is not counted.
  await timeOne("cf", "warm");
  const times: Record<keyof typeof pushers, number[]> = { cf: [], berth: [] };
  for (let i = 0; i < RUNS; i++) {
    for (const tool of ["cf", "berth"] as const) times[tool].push(await timeOne(tool, `${tool}-${i}`));
  }
  const fmt = (xs: number[]) => `p50 ${(p50(xs) / 1000).toFixed(2)} s  (min ${(Math.min(...xs) / 1000).toFixed(2)}, max ${(Math.max(...xs) / 1000).toFixed(2)})`;
  console.log(`push -> first 200 through the router, cached image, ${RUNS} runs each`);
  console.log(`  cf push    ${fmt(times.cf)}`);
  console.log(`  berth push ${fmt(times.berth)}`);
  console.log(`  cf / berth = ${(p50(times.cf) / p50(times.berth)).toFixed(2)}`);
  console.log("berth push, p50 ms from its start to each step answered:");
  for (const [name] of STEPS) console.log(`  ${name.padEnd(34)} ${steps[name]!.length ? Math.round(p50(steps[name]!)) : "-"}`);
  console.log(`  ${"first 200 through the router".padEnd(34)} ${Math.round(p50(times.berth))}`);
  console.log(`the last berth push, request by request (ms from its start, answered):\n${lastTrace}`);
  console.log(`load average during the run: ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
} finally {
  await stack.stop();
  await registry.stop();
  await rm(cf.home, { recursive: true, force: true });
  await rm(berthHome, { recursive: true, force: true });
}
