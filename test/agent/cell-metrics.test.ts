/**
 * The cell agent's /metrics: what the metrics module records from instance
 * reports, pulls and health-check failures, and the Prometheus text it
 * serves on its own port.
 */
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import type { ReportedState } from "../../shared/protocol/instance";
import { CellMetrics } from "../../agent/cell/metrics";
import { startMetricsServer, type MetricsServer } from "../../agent/metrics/serve";

const servers: MetricsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

function sample(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe("cell agent metrics", () => {
  it("counts starts and their duration, pulls and bytes, health-check failures, and serves instances by state and the cache size", async () => {
    let now = 1_000_000;
    const metrics = new CellMetrics(() => now);
    const states: ReportedState[] = ["RUNNING", "RUNNING", "CRASHED"];
    metrics.watch({ states: () => states, cacheBytes: () => 4096 });

    metrics.instanceReport({ instance_guid: "a", state: "STARTING" });
    metrics.instanceReport({ instance_guid: "b", state: "STARTING" });
    // A repeated STARTING is the same start.
    metrics.instanceReport({ instance_guid: "a", state: "STARTING" });
    now += 1500;
    metrics.instanceReport({ instance_guid: "a", state: "RUNNING" });
    now += 500;
    metrics.instanceReport({ instance_guid: "b", state: "CRASHED" });
    // Later reports of a started instance are no new start and no second duration.
    metrics.instanceReport({ instance_guid: "a", state: "CRASHED" });
    metrics.pulled(1234);
    metrics.pulled(0);
    metrics.healthCheckFailed();

    const server = await startMetricsServer("127.0.0.1", 0, () => metrics.render());
    servers.push(server);
    const res = await request(`http://127.0.0.1:${server.address.port}/metrics`);
    const text = await res.body.text();
    expect(res.statusCode, text).toBe(200);
    expect(res.headers["content-type"]).toContain("text/plain");

    expect(sample(text, "berth_cell_instance_starts_total")).toBe(2);
    expect(sample(text, 'berth_cell_instance_start_duration_seconds_count{outcome="running"}')).toBe(1);
    expect(sample(text, 'berth_cell_instance_start_duration_seconds_sum{outcome="running"}')).toBe(1.5);
    expect(sample(text, 'berth_cell_instance_start_duration_seconds_count{outcome="failed"}')).toBe(1);
    expect(sample(text, 'berth_cell_instance_start_duration_seconds_sum{outcome="failed"}')).toBe(2);
    expect(sample(text, "berth_cell_image_pulls_total")).toBe(2);
    expect(sample(text, "berth_cell_image_pulled_bytes_total")).toBe(1234);
    expect(sample(text, "berth_cell_health_check_failures_total")).toBe(1);
    expect(sample(text, 'berth_cell_instances{state="RUNNING"}')).toBe(2);
    expect(sample(text, 'berth_cell_instances{state="CRASHED"}')).toBe(1);
    expect(sample(text, 'berth_cell_instances{state="STARTING"}')).toBe(0);
    expect(sample(text, "berth_cell_layer_cache_bytes")).toBe(4096);

    expect((await request(`http://127.0.0.1:${server.address.port}/`)).statusCode).toBe(404);
  });
});
