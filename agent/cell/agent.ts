/**
 * @module The cell agent's main loop: long-poll the desired set, apply the
 * difference through one InstanceRunner per instance, report every state change
 * at once and heartbeat on an interval. While the control plane is unreachable
 * it keeps containers running and retries with backoff and jitter; on restart
 * it re-adopts what it ran.
 */
import type { CellMetrics } from "./metrics";
import type { Logger } from "pino";
import type { DesiredSet } from "../../shared/protocol/desired-set";
import type { InstanceReport, InstanceSpec } from "../../shared/protocol/instance";
import type { Resources } from "../../shared/protocol/resources";
import type { Heartbeat } from "../../shared/protocol/heartbeat";
import type { StagingTask } from "../../shared/protocol/staging";
import type { ContainerDriver } from "../supervisor/driver";
import type { InstanceEvent } from "../supervisor/cell-lines";
import { InstanceRunner, realClock, type Clock, type RunnerConfig } from "../supervisor/runner";
import { nextHeartbeatDelay, retryDelay, type BackoffConfig } from "./backoff";
import { ControlPlaneError, type ControlPlaneClient, type StagingOutcome } from "./control-plane";
import { InstanceStore } from "./instance-store";
import { boundedStagingResult } from "./staging";
import { reconcile } from "./reconcile";
import { TakenList } from "./heartbeat-list";

export interface CellAgentConfig {
  stateDir: string;
  capacity: Resources;
  heartbeatIntervalMs: number;
  /** The longest a heartbeat goes without listing the instances (heartbeat-list.ts). */
  bulkSyncIntervalMs: number;
  /** Extra random wait before re-polling after a hold ends unchanged. */
  pollJitterMs: number;
  backoff: BackoffConfig;
  runner: RunnerConfig;
}

export interface CellAgentDeps {
  client: ControlPlaneClient;
  driver: ContainerDriver;
  log: Logger;
  clock?: Clock;
  /** Layer digests the image store holds (for placement). */
  cachedLayers(): Promise<string[]>;
  /** Sees every desired set before it is applied (registry access changes). */
  onDesiredSet?(set: DesiredSet): void;
  /** Resolves a staging task on this cell (registries only cells can reach). */
  stage(task: StagingTask, registryAccess: DesiredSet["registry_access"]): Promise<StagingOutcome>;
  /** Prometheus figures (--metrics-port); none when absent. */
  metrics?: CellMetrics;
  /** What happens to each instance, for its app's CELL lines; none when absent. */
  instanceEvent?(spec: InstanceSpec, event: InstanceEvent): void;
}

export class CellAgent {
  private readonly runners = new Map<string, InstanceRunner>();
  private readonly stopping = new Map<string, Promise<void>>();
  private readonly unsent = new Map<string, InstanceReport>();
  private readonly staged = new Set<string>();
  private readonly store: InstanceStore;
  private readonly clock: Clock;
  private readonly abort = new AbortController();
  private version: number | null = null;
  private loops: Promise<void>[] = [];
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly config: CellAgentConfig,
    private readonly deps: CellAgentDeps,
  ) {
    this.store = new InstanceStore(config.stateDir);
    this.clock = deps.clock ?? realClock;
  }

  /** The version of the desired set last applied (null before the first). */
  get appliedVersion(): number | null {
    return this.version;
  }

  get instances(): ReadonlyMap<string, InstanceRunner> {
    return this.runners;
  }

  async start(): Promise<void> {
    await this.readopt();
    this.loops = [this.pollLoop(), this.heartbeatLoop()];
  }

  /** Stops polling and reporting; containers keep running for the next agent to adopt. */
  async shutdown(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled(this.loops);
  }

  /** Stops every instance (used when a cell is decommissioned and by tests). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.runners.keys()].map((g) => this.stopInstance(g)));
    await Promise.all(this.stopping.values());
  }

  private async readopt(): Promise<void> {
    const specs = await this.store.list((file, e) => this.deps.log.warn({ file, err: e.message }, "unreadable instance state"));
    for (const spec of specs) {
      const runner = this.newRunner(spec);
      if (await runner.adopt()) {
        this.deps.log.info({ instance: spec.instance_guid }, "re-adopted running container");
      } else {
        runner.markLost("instance exited while the cell agent was down");
        await runner.stop();
      }
    }
  }

  private newRunner(spec: InstanceSpec): InstanceRunner {
    const runner = new InstanceRunner(spec, this.deps.driver, (report) => this.onReport(report), this.config.runner, this.clock, {
      healthCheckFailed: () => this.deps.metrics?.healthCheckFailed(),
      instanceEvent: (event) => this.deps.instanceEvent?.(spec, event),
    });
    this.runners.set(spec.instance_guid, runner);
    return runner;
  }

  private onReport(report: InstanceReport): void {
    this.deps.log.info({ instance: report.instance_guid, state: report.state, reason: report.reason ?? undefined }, "instance state");
    this.deps.metrics?.instanceReport(report);
    this.unsent.set(report.instance_guid, report);
    void this.flushReports();
  }

  /** Sends state changes at once; what fails stays queued for the next try or heartbeat. */
  private flushReports(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      let attempt = 0;
      while (this.unsent.size > 0 && !this.abort.signal.aborted) {
        const batch = [...this.unsent.values()];
        // Done with these reports; a newer one of the same instance, queued meanwhile, stays.
        const settle = () => batch.forEach((r) => this.unsent.get(r.instance_guid) === r && this.unsent.delete(r.instance_guid));
        const answered = this.taken.sending();
        try {
          await this.deps.client.reportInstances(batch, this.abort.signal);
          answered(batch);
          settle();
          attempt = 0;
        } catch (e) {
          answered(null);
          if (e instanceof ControlPlaneError && e.permanent) {
            // Refused for good (e.g. the instance was moved off this cell): resending cannot help.
            this.deps.log.warn({ err: e.message, instances: batch.map((r) => r.instance_guid) }, "instance report refused; dropped");
            settle();
            continue;
          }
          this.deps.log.warn({ err: (e as Error).message }, "instance report failed; retrying");
          await this.clock.sleep(retryDelay(attempt++, this.config.backoff), this.abort.signal);
        }
      }
    })().finally(() => (this.flushing = null));
    return this.flushing;
  }

  private async pollLoop(): Promise<void> {
    let attempt = 0;
    while (!this.abort.signal.aborted) {
      try {
        const set = await this.deps.client.desired(this.version, this.abort.signal);
        attempt = 0;
        if (set) await this.apply(set);
        else await this.clock.sleep(Math.random() * this.config.pollJitterMs, this.abort.signal);
      } catch (e) {
        if (this.abort.signal.aborted) return;
        const delay = retryDelay(attempt++, this.config.backoff);
        this.deps.log.warn({ err: (e as Error).message, retryInMs: delay }, "desired-set poll failed; containers keep running");
        await this.clock.sleep(delay, this.abort.signal);
      }
    }
  }

  /** Applies a desired set: start what is missing, stop what is not wanted. */
  async apply(set: DesiredSet): Promise<void> {
    this.deps.onDesiredSet?.(set);
    const running = new Map([...this.runners].map(([g, r]) => [g, r.spec] as const));
    const plan = reconcile(set.instances, running);
    if (plan.unknown.length > 0) {
      // Instances this cell took that it neither runs nor remembers (its state was lost): the set again, every spec in it.
      this.deps.log.warn({ instances: plan.unknown }, "desired set names taken instances this cell does not know; reading it with every spec");
      const whole = await this.deps.client.desired(null, this.abort.signal, "all");
      if (whole) await this.apply(whole);
      return;
    }
    for (const guid of plan.stop) void this.stopInstance(guid);
    for (const spec of plan.start) {
      // A replaced spec under the same guid starts once its old container is gone.
      await this.stopping.get(spec.instance_guid);
      await this.store.save(spec);
      this.newRunner(spec).start();
    }
    for (const task of set.staging_tasks) {
      if (this.staged.has(task.build_guid)) continue;
      this.staged.add(task.build_guid);
      void this.runStaging(task, set.registry_access);
    }
    this.version = set.version;
  }

  private stopInstance(guid: string): Promise<void> {
    const runner = this.runners.get(guid);
    if (!runner) return this.stopping.get(guid) ?? Promise.resolve();
    this.runners.delete(guid);
    const done = runner
      .stop()
      .then(() => this.store.remove(guid))
      .catch((e) => this.deps.log.error({ instance: guid, err: (e as Error).message }, "stopping instance failed"))
      .finally(() => this.stopping.delete(guid));
    this.stopping.set(guid, done);
    return done;
  }

  private async runStaging(task: StagingTask, access: DesiredSet["registry_access"]): Promise<void> {
    let result: StagingOutcome;
    try {
      result = await this.deps.stage(task, access);
    } catch (e) {
      result = { build_guid: task.build_guid, state: "FAILED", error: (e as Error).message.slice(0, 1024) };
    }
    result = boundedStagingResult(result);
    for (let attempt = 0; !this.abort.signal.aborted; attempt++) {
      try {
        await this.deps.client.stagingResult(result, this.abort.signal);
        return;
      } catch (e) {
        // A refusal the same body would meet again: the build fails with its text instead; a refused failure is logged and not sent again.
        if (e instanceof ControlPlaneError && e.permanent) {
          if (result.state === "FAILED") {
            this.deps.log.error({ build: task.build_guid, err: e.message }, "staging failure refused by the control plane; not sent again");
            return;
          }
          result = { build_guid: task.build_guid, state: "FAILED", error: e.message.slice(0, 1024) };
          continue;
        }
        this.deps.log.warn({ build: task.build_guid, err: (e as Error).message }, "staging result not delivered; retrying");
        await this.clock.sleep(retryDelay(attempt, this.config.backoff), this.abort.signal);
      }
    }
  }

  /** What the control plane has taken of this cell's instances (lists and reports). */
  private readonly taken = new TakenList();
  /** The control plane refused a beat without a list (it predates them): every beat lists from then on. */
  private listsRequired = false;

  private async heartbeatLoop(): Promise<void> {
    let failures = 0;
    while (!this.abort.signal.aborted) {
      const startedAt = this.clock.now();
      let beat: Awaited<ReturnType<CellAgent["heartbeat"]>> | undefined;
      try {
        beat = await this.heartbeat(startedAt);
        // A beat unanswered after two intervals is given up and sent again: three make the cell lost.
        const listNext = await this.deps.client.heartbeat(beat.message, this.abort.signal, 2 * this.config.heartbeatIntervalMs);
        if (beat.message.instances) this.taken.listed(beat.message.instances, startedAt, beat.mark);
        if (listNext) this.taken.forget();
        failures = 0;
      } catch (e) {
        if (this.abort.signal.aborted) return;
        failures += 1;
        // A control plane that predates list-less beats names the field it misses.
        if (beat && !beat.message.instances && e instanceof ControlPlaneError && e.status === 422 && e.message.includes("instances")) {
          this.listsRequired = true;
          this.deps.log.warn({ err: e.message }, "the control plane requires every heartbeat to list the instances: listing them from now on");
        } else {
          this.deps.log.warn({ err: (e as Error).message }, "heartbeat failed");
        }
      }
      await this.clock.sleep(nextHeartbeatDelay(startedAt, this.clock.now(), this.config.heartbeatIntervalMs, failures), this.abort.signal);
    }
  }

  /** The beat sent at `now`, and the mark of its reading (heartbeat-list.ts). */
  private async heartbeat(now: number): Promise<{ message: Omit<Heartbeat, "protocol">; mark: number }> {
    const cachedLayers = await this.deps.cachedLayers();
    const runners = [...this.runners.values()];
    const reports = runners.map((runner) => runner.report());
    const used = { memory_mb: 0, disk_mb: 0, containers: 0 };
    runners.forEach((runner, i) => {
      const { state } = reports[i]!;
      if (state === "STARTING" || state === "RUNNING") {
        used.memory_mb += runner.spec.memory_mb;
        used.disk_mb += runner.spec.disk_mb;
        used.containers += 1;
      }
    });
    const cap = this.config.capacity;
    const message = {
      capacity: cap,
      free: {
        memory_mb: Math.max(0, cap.memory_mb - used.memory_mb),
        disk_mb: Math.max(0, cap.disk_mb - used.disk_mb),
        containers: Math.max(0, cap.containers - used.containers),
      },
      cached_layers: cachedLayers,
    };
    if (!this.listsRequired && !this.taken.due(reports, now, this.config.bulkSyncIntervalMs)) return { message, mark: this.taken.mark() };
    const usage: InstanceReport["usage"][] = [];
    for (const runner of runners) usage.push(await runner.usage());
    // The states as they are once the usage reads (du of each container's disk) are done: a list must not carry a
    // state older than a report the runner has sent meanwhile (the control plane would take whichever lands last).
    const mark = this.taken.mark();
    const instances = runners.map((runner, i): InstanceReport => ({ ...runner.report(), usage: usage[i]! }));
    return { message: { ...message, instances }, mark };
  }
}
