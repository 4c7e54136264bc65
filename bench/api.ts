/**
 * API bench: the real control plane under `wrangler dev` (workerd + local D1 in
 * a temp persist dir, migrations applied) on a free loopback port. Creates
 * 1,000 Docker apps through the API, then drives keep-alive load with
 * autocannon and prints requests/s, p50 and p99. The peer is GET /v3/info (no
 * D1 query): the ratio says what D1 and the app queries cost over the bare
 * Worker path.
 *
 * Run: npx tsx bench/api.ts [--apps 1000] [--duration 10] [--connections 10]
 */
import autocannon from "autocannon";
import { startControlPlane } from "../test/support/control-plane";
import { arg } from "./args";

const APPS = arg("apps", 1000);
const DURATION = arg("duration", 10);
const CONNECTIONS = arg("connections", 10);

async function call(url: string, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => undefined);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json as any;
}

interface Figure {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function load(name: string, opts: autocannon.Options): Promise<Figure> {
  const r = await autocannon({ connections: CONNECTIONS, duration: DURATION, pipelining: 1, ...opts });
  return { name, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}

async function main() {
  const cp = await startControlPlane({ vars: { LONG_POLL_HOLD_MS: "1000" } });
  try {
    const { url, adminToken: token } = cp;
    await call(url, token, "PATCH", "/v3/feature_flags/diego_docker", { enabled: true });
    const space = await call(url, token, "POST", "/v3/spaces", { name: `bench-${Date.now()}` });

    const t0 = performance.now();
    const parallel = 10;
    for (let i = 0; i < APPS; i += parallel) {
      await Promise.all(Array.from({ length: Math.min(parallel, APPS - i) }, (_, j) =>
        call(url, token, "POST", "/v3/apps", {
          name: `app-${i + j}`, relationships: { space: { data: { guid: space.guid } } }, lifecycle: { type: "docker", data: {} },
        })));
    }
    const createMs = performance.now() - t0;
    const listed = await call(url, token, "GET", "/v3/apps?per_page=1");
    if (listed.pagination.total_results !== APPS) throw new Error(`expected ${APPS} apps, found ${listed.pagination.total_results}`);
    console.log(`created ${APPS} apps through POST /v3/apps in ${(createMs / 1000).toFixed(1)} s (${(APPS / (createMs / 1000)).toFixed(0)} apps/s, ${parallel} in flight)`);

    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const figures = [
      await load("GET /v3/info (peer: no D1)", { url: `${url}/v3/info`, headers }),
      await load("GET /v3/apps (50 of 1,000)", { url: `${url}/v3/apps`, headers }),
      await load("GET /v3/apps?per_page=500", { url: `${url}/v3/apps?per_page=500`, headers }),
      await load("PATCH /v3/feature_flags/diego_docker", {
        url: `${url}/v3/feature_flags/diego_docker`, method: "PATCH", headers, body: JSON.stringify({ enabled: true }),
      }),
    ];
    const peer = figures[0]!.rps;
    console.log(`\nautocannon: ${CONNECTIONS} keep-alive connections, ${DURATION} s each, loopback, wrangler dev (workerd + local D1)`);
    console.log("endpoint".padEnd(40), "req/s".padStart(9), "p50 ms".padStart(8), "p99 ms".padStart(8), "vs peer".padStart(8), "non-2xx".padStart(8));
    for (const f of figures) {
      console.log(f.name.padEnd(40), f.rps.toFixed(0).padStart(9), String(f.p50).padStart(8), String(f.p99).padStart(8),
        `${(f.rps / peer).toFixed(2)}x`.padStart(8), String(f.non2xx + f.errors).padStart(8));
    }
  } finally {
    await cp.stop();
  }
}

await main();
