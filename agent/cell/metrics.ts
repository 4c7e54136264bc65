/**
 * @module The cell agent's Prometheus metrics (prom-client), Diego's rep
 * figures: instances by state, starts and how long they take to become
 * healthy, image pulls and the bytes they download, the layer cache's size,
 * and health-check failures. Recorded at the agent's existing event points
 * (instance reports, the driver's pulls, the runner's probes).
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { reportedStateSchema, type InstanceReport, type ReportedState } from "../../shared/protocol/instance";

export interface CellMetricsSources {
  /** States of the instances the agent holds now. */
  states(): Iterable<ReportedState>;
  /** Bytes held by the layer cache. */
  cacheBytes(): number;
}

export class CellMetrics {
  readonly registry = new Registry();
  private sources: CellMetricsSources = { states: () => [], cacheBytes: () => 0 };
  /** Instance → when it was first reported STARTING, until it leaves that state. */
  private readonly startedAt = new Map<string, number>();
  private readonly starts: Counter;
  private readonly startDuration: Histogram<"outcome">;
  private readonly pulls: Counter;
  private readonly pulledBytes: Counter;
  private readonly healthFailures: Counter;

  constructor(private readonly now: () => number = Date.now) {
    const registers = [this.registry];
    const sources = () => this.sources;
    new Gauge({
      name: "berth_cell_instances",
      help: "Instances on this cell, by state",
      labelNames: ["state"],
      registers,
      collect() {
        const counts = new Map<string, number>(reportedStateSchema.options.map((s) => [s, 0]));
        for (const state of sources().states()) counts.set(state, (counts.get(state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: "berth_cell_layer_cache_bytes",
      help: "Bytes held by the layer cache",
      registers,
      collect() {
        this.set(sources().cacheBytes());
      },
    });
    this.starts = new Counter({ name: "berth_cell_instance_starts_total", help: "Instances started (containers created for a desired instance)", registers });
    this.startDuration = new Histogram({
      name: "berth_cell_instance_start_duration_seconds",
      help: "From STARTING to RUNNING (outcome running) or to a crash or stop before that",
      labelNames: ["outcome"],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.pulls = new Counter({ name: "berth_cell_image_pulls_total", help: "Image pulls completed", registers });
    this.pulledBytes = new Counter({ name: "berth_cell_image_pulled_bytes_total", help: "Compressed layer bytes downloaded by pulls", registers });
    this.healthFailures = new Counter({ name: "berth_cell_health_check_failures_total", help: "Liveness checks failed and instances never healthy by their start timeout", registers });
  }

  /** Where instance states and the cache size are read at each scrape. */
  watch(sources: CellMetricsSources): void {
    this.sources = sources;
  }

  /** Every instance report: a first STARTING is a start; leaving STARTING ends its duration. */
  instanceReport(report: Pick<InstanceReport, "instance_guid" | "state">): void {
    const since = this.startedAt.get(report.instance_guid);
    if (report.state === "STARTING") {
      if (since !== undefined) return;
      this.startedAt.set(report.instance_guid, this.now());
      this.starts.inc();
      return;
    }
    if (since === undefined) return;
    this.startedAt.delete(report.instance_guid);
    this.startDuration.observe({ outcome: report.state === "RUNNING" ? "running" : "failed" }, (this.now() - since) / 1000);
  }

  /** A pull that finished, with the compressed bytes it downloaded (0 when every layer was cached). */
  pulled(bytes: number): void {
    this.pulls.inc();
    this.pulledBytes.inc(bytes);
  }

  healthCheckFailed(): void {
    this.healthFailures.inc();
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
