/**
 * GET /metrics on the router daemon (Prometheus text): requests by status
 * class, the latency histogram and the route table's age, from one process
 * and summed across cluster workers.
 */
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { statusClass } from "../../agent/router/metrics";
import { DATA_PATH, get, LOOPBACK, route, spawnRouterDaemon, startBackend, startFakeControlPlane, until } from "./support";

const TOKEN = "metrics-test-token";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function scrape(port: number): Promise<string> {
  const res = await request(`http://${LOOPBACK}:${port}/metrics`);
  const body = await res.body.text();
  expect(res.statusCode, body).toBe(200);
  expect(res.headers["content-type"]).toContain("text/plain");
  return body;
}

/** The value of the sample `name` (with its labels, as printed), or undefined when absent. */
function sample(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe("statusClass", () => {
  it("groups statuses by their hundred, and anything else as other", () => {
    expect([200, 204, 301, 404, 502, 0, 999].map(statusClass)).toEqual(["2xx", "2xx", "3xx", "4xx", "5xx", "other", "other"]);
  });
});

describe("GET /metrics on the router daemon", () => {
  for (const workers of [0, 2]) {
    it(`counts requests by status class and their latency, and reports the route table's age (workers ${workers})`, async () => {
      const cp = await startFakeControlPlane({ token: TOKEN, holdMs: 300 });
      cleanups.push(() => cp.stop());
      const a = await startBackend("a");
      cleanups.push(() => a.close());
      cp.publish([route("a.apps.test", a.port)]);

      const d = spawnRouterDaemon(
        ["--api-url", cp.url, "--listen", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--workers", String(workers), "--poll-jitter-ms", "0", "--backoff-base-ms", "50", "--backoff-max-ms", "100"],
        { BERTH_ROUTER_TOKEN: TOKEN },
      );
      cleanups.push(() => d.kill());
      await until(() => d.port("metrics listening") !== undefined && d.port() !== undefined, 60_000, () => `daemon up: ${d.stderr()}`);
      const metrics = d.port("metrics listening")!;
      const syncedMsg = workers === 0 || DATA_PATH === "haproxy" ? "route table received" : "workers in sync";
      await until(() => d.lines.some((l) => l.msg === syncedMsg), 20_000, "table applied");

      const before = await scrape(metrics);
      expect(sample(before, 'berth_router_requests_total{status_class="2xx"}') ?? 0).toBe(0);

      for (let i = 0; i < 3; i++) expect((await get(d.port()!, "a.apps.test")).status).toBe(200);
      expect((await get(d.port()!, "nowhere.apps.test")).status).toBe(404);

      // HAProxy's access lines, which the counts come from on that path, arrive just after the answers.
      await until(async () => sample(await scrape(metrics), "berth_router_request_duration_seconds_count") === 4, 5_000, "four requests counted");
      const after = await scrape(metrics);
      expect(sample(after, 'berth_router_requests_total{status_class="2xx"}')).toBe(3);
      expect(sample(after, 'berth_router_requests_total{status_class="4xx"}')).toBe(1);
      expect(sample(after, "berth_router_request_duration_seconds_count")).toBe(4);
      expect(sample(after, 'berth_router_request_duration_seconds_bucket{le="+Inf"}')).toBe(4);
      const age = sample(after, "berth_router_route_table_age_seconds");
      expect(age).toBeGreaterThanOrEqual(0);

      // Anything but /metrics is not found.
      expect((await request(`http://${LOOPBACK}:${metrics}/other`)).statusCode).toBe(404);
    }, 120_000);
  }
});
