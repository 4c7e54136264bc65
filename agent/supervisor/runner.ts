/**
 * @module One runner per instance (Nomad's TaskRunner, the kubelet's pod
 * worker): start → health → watch → stop, with every state change reported at
 * once. Decisions are the pure `transition()`; this file only does the I/O and
 * the timing, with the clock injected so tests run in milliseconds.
 */
import type { Exit, InstanceReport, InstanceSpec, ReportedState } from "../../shared/protocol/instance";
import { DEFAULT_STOP_SIGNAL } from "../../shared/staging/stop-signal";
import type { ContainerDriver, PullProgress, RunningContainer } from "./driver";
import { probeFor, startProbeDelayMs, type Probe } from "./health";
import type { InstanceEvent } from "./cell-lines";
import { transition, type LifecycleEvent } from "./lifecycle";

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      const onAbort = () => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

export interface RunnerConfig {
  /** First wait between probes while STARTING; it doubles up to startProbeIntervalMs. */
  startProbeFirstMs: number;
  /** Longest wait between probes while STARTING (CF probes quickly until the first success). */
  startProbeIntervalMs: number;
  /** Stop signal → SIGKILL grace period (CF: 10 s). */
  stopGraceMs: number;
  /**
   * A RUNNING instance's stop → its stop signal (Nomad's shutdown_delay): the control plane took it out
   * of the route table when it ordered the stop, and routers learn that within a second; until then they
   * may still send it requests, which a stopped instance would fail mid-answer.
   */
  shutdownDelayMs: number;
  /** Multiplies spec timeouts (1 in production; tests shrink them). */
  timeScale: number;
}

/** Things a runner tells besides its reports (metrics). */
export interface RunnerHooks {
  /** A liveness check failed, or the instance was never healthy by its start timeout. */
  healthCheckFailed?(): void;
  /** What happened to the instance, for its app's CELL lines (cell-lines.ts). */
  instanceEvent?(event: InstanceEvent): void;
}

export const defaultRunnerConfig: RunnerConfig = { startProbeFirstMs: 2, startProbeIntervalMs: 100, stopGraceMs: 10_000, shutdownDelayMs: 1_000, timeScale: 1 };

export class InstanceRunner {
  private state: ReportedState = "STARTING";
  private since: number;
  private reason: string | null = null;
  private exit: Exit | null = null;
  private container: RunningContainer | null = null;
  private readonly abort = new AbortController();
  private lifecycle: Promise<void> = Promise.resolve();
  /** Set by stop(): the exit it causes is a stop, not a crash. */
  private stopping = false;
  private readonly destroyed = new WeakSet<RunningContainer>();
  progress: PullProgress | null = null;

  constructor(
    readonly spec: InstanceSpec,
    private readonly driver: ContainerDriver,
    private readonly onChange: (report: InstanceReport) => void,
    private readonly config: RunnerConfig = defaultRunnerConfig,
    private readonly clock: Clock = realClock,
    private readonly hooks: RunnerHooks = {},
  ) {
    this.since = clock.now();
  }

  get current(): ReportedState {
    return this.state;
  }

  /** Starts a new container for the spec. */
  start(): void {
    this.onChange(this.report());
    this.tell({ type: "creating" });
    this.lifecycle = this.run(async (signal) => {
      const container = await this.driver.start(this.spec, { signal, onProgress: (p) => (this.progress = p) });
      this.tell({ type: "created" });
      return container;
    });
  }

  private tell(event: InstanceEvent): void {
    this.hooks.instanceEvent?.(event);
  }

  /** Takes over a container a previous agent process started; false when it is gone. */
  async adopt(): Promise<boolean> {
    const container = await this.driver.recover(this.spec);
    if (!container) return false;
    this.lifecycle = this.run(async () => container);
    return true;
  }

  /** Marks an instance that died while no agent watched it (re-adoption found it gone). */
  markLost(reason: string): void {
    this.apply({ type: "start_failed", reason });
  }

  /**
   * A RUNNING instance serves on for the shutdown delay; then the image's STOPSIGNAL (else SIGTERM),
   * then SIGKILL after the grace period; resolves when everything is removed.
   */
  async stop(): Promise<void> {
    const serving = this.state === "RUNNING";
    this.stopping = true;
    this.abort.abort();
    const c = this.container;
    if (c) {
      // A crashed instance's container is already being reaped: nothing is stopped.
      if (this.state !== "CRASHED") this.tell({ type: "stopping" });
      if (serving && this.config.shutdownDelayMs > 0) await Promise.race([this.clock.sleep(this.config.shutdownDelayMs), c.exited]);
      await c.signal(this.spec.stop_signal ?? DEFAULT_STOP_SIGNAL).catch(() => undefined);
      const graceOver = this.clock.sleep(this.config.stopGraceMs).then(() => "grace" as const);
      if ((await Promise.race([c.exited.then(() => "exited" as const), graceOver])) === "grace") {
        await c.signal("SIGKILL").catch(() => undefined);
        await c.exited;
      }
    }
    await this.lifecycle;
    await this.destroy(this.container);
    this.apply({ type: "stopped" });
  }

  report(): InstanceReport {
    const progress = this.state === "STARTING" && this.progress
      ? `pulling layers: ${this.progress.layersDone}/${this.progress.layersTotal}, ${this.progress.bytesDone}/${this.progress.bytesTotal} bytes`
      : null;
    return {
      instance_guid: this.spec.instance_guid,
      state: this.state,
      since: this.since,
      host_port: this.container?.hostPort ?? null,
      crash_count: 0,
      exit: this.exit,
      reason: this.reason ?? progress,
      usage: null,
    };
  }

  async usage() {
    return this.state === "RUNNING" ? (this.container?.usage() ?? null) : null;
  }

  private apply(event: LifecycleEvent): void {
    if (this.stopping && event.type !== "stopped") return;
    const t = transition(this.state, event);
    if (!t) return;
    this.state = t.state;
    this.since = this.clock.now();
    this.reason = t.reason;
    if (t.exit) this.exit = t.exit;
    const told = toldEvent(event);
    if (told) this.tell(told);
    if (t.state === "CRASHED" && this.container) void this.reap(this.container, t.kill);
    this.onChange(this.report());
  }

  /** A crashed instance keeps its report but frees its container at once (memory, disk, port). */
  private async reap(c: RunningContainer, kill: boolean): Promise<void> {
    if (kill) await c.signal("SIGKILL").catch(() => undefined);
    await c.exited.catch(() => undefined);
    await this.destroy(c);
  }

  /** Once per container: a crash's reap and a later stop both come here. */
  private async destroy(c: RunningContainer | null): Promise<void> {
    if (!c) return;
    if (!this.destroyed.has(c)) this.tell({ type: "destroying" });
    this.destroyed.add(c);
    await c.destroy();
  }

  private async run(create: (signal: AbortSignal) => Promise<RunningContainer>): Promise<void> {
    const signal = this.abort.signal;
    try {
      this.container = await create(signal);
    } catch (e) {
      if (!signal.aborted) {
        this.tell({ type: "create_failed", reason: (e as Error).message });
        this.apply({ type: "start_failed", reason: (e as Error).message });
      }
      return;
    }
    const c = this.container;
    c.exited.then((exit) => this.apply({ type: "exited", exit }), () => undefined);
    const probe = probeFor(this.spec.health_check, c.probeHost, c.probePort);
    if (this.state === "STARTING") await this.awaitHealthy(probe, signal);
    if (this.state === "RUNNING" && probe) await this.watchLiveness(probe, signal);
  }

  private async awaitHealthy(probe: Probe | null, signal: AbortSignal): Promise<void> {
    if (!probe) {
      this.apply({ type: "healthy" });
      return;
    }
    const timeoutMs = this.spec.health_check.timeout_s * 1000 * this.config.timeScale;
    const deadline = this.clock.now() + timeoutMs;
    let lastError: string | null = null;
    for (let attempt = 0; !signal.aborted && this.state === "STARTING"; attempt++) {
      lastError = await probe();
      if (lastError === null) {
        this.apply({ type: "healthy" });
        return;
      }
      if (this.clock.now() >= deadline) {
        this.hooks.healthCheckFailed?.();
        this.apply({ type: "start_timeout", timeoutS: this.spec.health_check.timeout_s, lastError });
        return;
      }
      await this.clock.sleep(startProbeDelayMs(attempt, this.config.startProbeFirstMs, this.config.startProbeIntervalMs), signal);
    }
  }

  private async watchLiveness(probe: Probe, signal: AbortSignal): Promise<void> {
    const intervalMs = this.spec.health_check.interval_s * 1000 * this.config.timeScale;
    while (!signal.aborted && this.state === "RUNNING") {
      await this.clock.sleep(intervalMs, signal);
      if (signal.aborted || this.state !== "RUNNING") return;
      const error = await probe();
      if (error !== null && !signal.aborted) {
        this.hooks.healthCheckFailed?.();
        this.apply({ type: "unhealthy", reason: error });
      }
    }
  }
}

/** The lifecycle events the app's logs tell of (a start failure is told where it happens, with its cause). */
function toldEvent(e: LifecycleEvent): InstanceEvent | null {
  switch (e.type) {
    case "healthy":
    case "unhealthy":
    case "start_timeout":
    case "exited":
      return e;
    default:
      return null;
  }
}
