/**
 * @module The scheduler: one Durable Object ("global") owns every convergence
 * pass, so two passes never interleave (D1 has no interactive transactions: two
 * concurrent passes could place one index twice).
 *
 * `wake(scope)` (typed RPC) only records what changed and sets the alarm to
 * now: a request never waits for a pass. The alarm runs the pass over the
 * scopes merged since the last one; wakes arriving meanwhile set the alarm
 * again and are read by the next pass. Every pass sets the alarm to the next
 * moment something becomes due (a heartbeat expiry, a backoff end, a claim
 * timing out, an unplaced retry, the periodic full pass).
 *
 * The scheduler measures its own stalls (an alarm firing late, a pass holding
 * D1 long) and converges with them, so time the control plane could not take
 * heartbeats is not counted against cells (shared/convergence/stalls.ts).
 */
import { DurableObject } from "cloudflare:workers";
import { connect } from "../db/connect";
import type { Bindings } from "../env";
import type { ConvergenceConfig } from "../../shared/convergence/config";
import { converge } from "../../shared/convergence/converge";
import { claimLookAt, nextDueAt } from "../../shared/convergence/next-due";
import { readSnapshot } from "../scheduling/snapshot";
import { buildWriteSet, specsNeeded, type PassOutcome } from "../scheduling/write-set";
import { commitWriteSet, loadSpecs } from "../db/write-set";
import { newGuid } from "../http/ids";
import { convergenceConfig } from "../scheduling/config";
import { readDeploymentFacts } from "../deployments/facts";
import { stepDeployments } from "../deployments/pass";
import { notifyChannels } from "../scheduling/long-poll";
import { emptyTally, profiling } from "../http/d1-tally";
import { recordStall, stallOf, type Stall } from "../../shared/convergence/stalls";
import { emptyScope, isEmptyScope, mergeScope, type PendingScope, type WakeScope } from "../scheduling/wake-scope";

/** Where the scheduler keeps when its alarm was due, to measure how late it fired. */
export const ALARM_DUE_KEY = "alarm_due_at";
/** Stalls are kept this many heartbeat TTLs. */
const STALL_HORIZON_TTLS = 10;

/** What a pass did, what it read, and the alarm it set (ms since the epoch, or null). */
export type PassReport = PassOutcome & {
  full: boolean;
  /** Instances and desired processes the pass read: grows with the change in an incremental pass. */
  read: { instances: number; processes: number };
  next_due_at: number | null;
};

export class Scheduler extends DurableObject<Bindings> {
  private running: Promise<PassReport> | null = null;
  private queued: Promise<PassReport> | null = null;
  /** A fresh object knows nothing of wakes its predecessor took: its first pass reads everything. */
  private pending: PendingScope = { ...emptyScope(), full: true };
  private lastFullAt = 0;
  private stalls: Stall[] = [];
  /** When this object last marked a cell LOST (the rate limit's clock). */
  private lastLostAt: number | null = null;

  /** Fire-and-forget: notes what changed and has the alarm run a pass now (`reason` is for the log). */
  async wake(_reason: string, scope: WakeScope): Promise<void> {
    mergeScope(this.pending, scope);
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > Date.now()) await this.setAlarm(Date.now());
  }

  /** Sets the alarm and remembers when it was due (in storage: an evicted object's successor measures the lag too). */
  private async setAlarm(at: number): Promise<void> {
    await this.ctx.storage.setAlarm(at);
    await this.ctx.storage.put(ALARM_DUE_KEY, at);
  }

  private addStall(stall: Stall | null, config: ConvergenceConfig): void {
    // Older stalls no longer overlap any live cell's silence.
    this.stalls = recordStall(this.stalls, stall, Date.now(), STALL_HORIZON_TTLS * config.heartbeatTtlMs);
  }

  /**
   * A heartbeat took [from, to) beyond the slack to commit: the control plane
   * (D1) was congested then, and that time is not counted against cells.
   */
  async noteStall(from: number, to: number): Promise<void> {
    this.addStall({ from, to }, convergenceConfig(this.env));
  }

  /** Runs a pass over `scope` and answers what it did (tests; the cron backstop asks for a full one). */
  async runPass(scope: WakeScope = { full: true }): Promise<PassReport> {
    mergeScope(this.pending, scope);
    return this.enqueue();
  }

  override async alarm(): Promise<void> {
    const due = await this.ctx.storage.get<number>(ALARM_DUE_KEY);
    const config = convergenceConfig(this.env);
    if (due !== undefined) this.addStall(stallOf(due, Date.now(), config.stallSlackMs), config);
    await this.enqueue();
  }

  /** Runs a pass now, or joins the one queued behind the running pass. */
  private enqueue(): Promise<PassReport> {
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    const after = this.running.then(
      () => undefined,
      () => undefined,
    );
    this.queued = after.then(() => {
      this.queued = null;
      return this.start();
    });
    return this.queued;
  }

  private start(): Promise<PassReport> {
    const pass = this.pass().finally(() => {
      if (this.running === pass) this.running = null;
    });
    this.running = pass;
    return pass;
  }

  private async pass(): Promise<PassReport> {
    const config = convergenceConfig(this.env);
    const now = Date.now();
    const scope = this.pending;
    this.pending = emptyScope();
    if (now - this.lastFullAt >= config.fullPassIntervalMs) scope.full = true;
    try {
      return await this.converge(scope, now, config);
    } catch (err) {
      // Nothing taken is lost: the retry reads it again.
      mergeScope(this.pending, { apps: [...scope.apps], cells: [...scope.cells], full: scope.full });
      console.error(JSON.stringify({ level: "error", msg: "convergence pass failed", error: String(err), stack: (err as Error).stack }));
      await this.setAlarm(Date.now() + config.unplacedRetryMs);
      throw err;
    } finally {
      this.addStall(stallOf(now, Date.now(), config.stallSlackMs), config);
    }
  }

  private async converge(scope: PendingScope, now: number, config: ConvergenceConfig): Promise<PassReport> {
    const tally = profiling(this.env) ? emptyTally() : null;
    const db = connect(this.env.DB, tally);
    const snap = await readSnapshot(db, scope.full ? "full" : { apps: [...scope.apps], cells: [...scope.cells] }, now, config);
    const readAt = Date.now();
    if (scope.full) this.lastFullAt = now;
    // Rolling deployments take their step first: the pass converges on the instance counts it chose.
    const facts = await readDeploymentFacts(db, new Set(snap.desired.processes.map((p) => p.app_guid)));
    const rolled = stepDeployments(facts, snap.desired, snap.actual, now);
    const history = { stalls: this.stalls, lastLostAt: this.lastLostAt };
    const plan = converge(rolled.desired, snap.actual, snap.cells, now, config, history);
    const specs = await loadSpecs(db, specsNeeded(plan));
    const built = buildWriteSet({ snap, plan, specs, now, config, newGuid, stalls: this.stalls });
    const { outcome } = built;
    const writes = [...rolled.writes, ...built.writes];
    await notifyChannels(this.env, await commitWriteSet(db, writes));
    if (outcome.lost_cells.length > 0) this.lastLostAt = now;

    const due = [
      nextDueAt(snap.due, snap.cells, now, config, { ...history, lastLostAt: this.lastLostAt }),
      claimLookAt(snap.oldestClaimSince, now, config),
      outcome.unplaced.length > 0 ? now + config.unplacedRetryMs : null,
      this.lastFullAt + config.fullPassIntervalMs,
      // Wakes that came in during this pass.
      isEmptyScope(this.pending) ? null : now,
    ].filter((t): t is number => t !== null);
    const next = Math.min(...due);
    await this.setAlarm(next);
    const report = { ...outcome, full: scope.full, read: { instances: snap.actual.length, processes: snap.desired.processes.length }, next_due_at: next };
    // Where a pass's time goes, for operators and the convergence bench.
    console.log(JSON.stringify({
      component: "scheduler", msg: "pass", full: scope.full, ms: Date.now() - now, read_ms: readAt - now, read: report.read, writes: writes.length,
      ...(tally ? { d1: tally } : {}),
      placed: outcome.placed.length, stopped: outcome.stopped.length, replaced: outcome.replaced.length, lost_cells: outcome.lost_cells.length,
    }));
    return report;
  }
}
