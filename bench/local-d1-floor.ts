/**
 * What the local control plane costs before any of Berth's code runs: the
 * workerd CPU of a request to a Worker that does nothing, of one D1 round
 * trip (a `SELECT 1`, 20 rows read, a batch of three statements), and of one
 * call to a Durable Object method that does nothing (as a notify to a cell's
 * channel: each call to another of 500 objects) on wrangler's own Miniflare, the local D1 that `wrangler dev` and bench/convergence-sim.ts
 * use. Locally D1 is a Durable Object over SQLite on workerd's one thread, so
 * every round trip is CPU there; on Cloudflare it runs in D1's own service.
 * convergence-sim's request, round-trip and channel-call counts times these
 * figures give the floor of its workerd CPU.
 *
 * Run: npx tsx bench/local-d1-floor.ts [--requests 4000] [--round-trips 4000]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { arg } from "./args";

const REQUESTS = arg("requests", 4000);
const ROUND_TRIPS = arg("round-trips", 4000);
/** Round trips per request, so the request's own cost is a small share of a round trip's figure. */
const PER_REQUEST = 100;
const IN_FLIGHT = 8;
const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux

const WORKER = `import { DurableObject } from "cloudflare:workers";
export class Noop extends DurableObject {
  ping() { return 1; }
}
export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    const n = Number(url.searchParams.get("n") ?? 0);
    if (url.pathname === "/setup") {
      await env.DB.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER)");
      await env.DB.prepare("INSERT INTO t (a, b) SELECT 'x', value FROM json_each(?)").bind(JSON.stringify([...Array(20).keys()])).run();
    }
    for (let i = 0; i < n; i++) {
      if (url.pathname === "/select-1") await env.DB.prepare("SELECT 1 AS x").first();
      if (url.pathname === "/rows-20") await env.DB.prepare("SELECT * FROM t LIMIT 20").all();
      if (url.pathname === "/batch-3") await env.DB.batch([env.DB.prepare("SELECT 1"), env.DB.prepare("UPDATE t SET b = b + 1 WHERE id = 1"), env.DB.prepare("SELECT * FROM t LIMIT 20")]);
      if (url.pathname === "/do-call") await env.NOOP.get(env.NOOP.idFromName(String(i % 500))).ping();
    }
    return new Response("ok");
  },
};`;

// wrangler's own Miniflare (and so its workerd), as test/support/workerd-control-plane.ts uses.
const wranglerRequire = createRequire(createRequire(import.meta.url).resolve("wrangler"));
const miniflare = wranglerRequire("miniflare") as {
  Miniflare: new (options: unknown) => { ready: Promise<URL>; dispose(): Promise<void> };
  convertV4MiniflareOptions(options: unknown): unknown;
};

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "berth-d1-floor-"));
  const mf = new miniflare.Miniflare(
    miniflare.convertV4MiniflareOptions({
      host: "127.0.0.1",
      port: 0,
      resourcePersistencePath: dir,
      workers: [{ name: "floor", modules: true, script: WORKER, compatibilityDate: "2025-01-01", d1Databases: ["DB"], durableObjects: { NOOP: "Noop" } }],
    }),
  );
  try {
    const origin = await mf.ready;
    // The newest workerd is this Miniflare's: started just now.
    const workerd = Number(execFileSync("pgrep", ["-n", "-x", "workerd"]).toString());
    await (await fetch(new URL("/setup", origin))).text();
    console.log(`wrangler's Miniflare, workerd pid ${workerd}; ${IN_FLIGHT} requests in flight; load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
    for (const [route, requests, n] of [
      ["/nothing", REQUESTS, 0],
      ["/select-1", Math.ceil(ROUND_TRIPS / PER_REQUEST), PER_REQUEST],
      ["/rows-20", Math.ceil(ROUND_TRIPS / PER_REQUEST), PER_REQUEST],
      ["/batch-3", Math.ceil(ROUND_TRIPS / PER_REQUEST), PER_REQUEST],
      ["/do-call", Math.ceil(ROUND_TRIPS / PER_REQUEST), PER_REQUEST],
    ] as const) {
      const before = cpuMs(workerd);
      let next = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < requests) {
            next++;
            await (await fetch(new URL(`${route}?n=${n}`, origin))).text();
          }
        }),
      );
      const spent = cpuMs(workerd) - before;
      const unit = route === "/do-call" ? "a call" : "a round trip";
      const what = n === 0 ? `a request: ${(spent / requests).toFixed(3)} ms` : `${unit}: ${(spent / (requests * n)).toFixed(3)} ms`;
      console.log(`${route.padEnd(10)} workerd CPU ${spent.toFixed(0)} ms; per ${what}`);
    }
  } finally {
    await mf.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
