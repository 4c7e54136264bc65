/**
 * @module `converge(desired, actual, cells, now, config)`: compares what should
 * run with what runs and returns a plan (bbs db/sqldb/lrp_convergence.go plus
 * controllers/lrp_convergence_controller.go, as one pure function). One small
 * named rule each; an instance one rule acts on is not seen by later rules.
 *
 * Rules, in order:
 * 1. expiredCells — silent longer than the TTL (not counting the control
 *    plane's own stalls): the cell is marked LOST, one per
 *    `lostCellIntervalMs` (the others count as live until their turn);
 *    unless most ACTIVE cells fell silent at once (a disruption: the control
 *    plane or its network is the likelier fault), when every ACTIVE cell
 *    counts as live this pass.
 * 2. stoppingOnDeadCells — STOPPING instances whose cell is gone: forgotten.
 * 3. undesiredInstances — app stopped, process gone, diego_docker off, or an
 *    older process version (a restart): stopped.
 * 4. settledReplacements — SUSPECT/EVACUATING copies: stopped once their
 *    replacement RUNS or CRASHES; a SUSPECT whose cell came back is promoted.
 * 5. extraInstances — indices ≥ the desired count: stopped, highest first.
 * 6. duplicateInstances — two instances of one index: the better one stays.
 * 7. lostCellInstances — on a dead cell: replaced elsewhere; a RUNNING one stays
 *    routable as SUSPECT until the replacement runs.
 * 8. drainingCellInstances — on a draining cell: replaced elsewhere; a RUNNING
 *    one keeps serving as EVACUATING (Diego's evacuation).
 * 9. unacknowledgedClaims — CLAIMED on a live cell past the claim timeout
 *    (not counting stalls) and the cell heartbeated since without it: the
 *    cell never took it; placed again.
 * 10. crashedInstances — CRASHED whose backoff has ended: restarted (replaced).
 * 11. unplacedInstances — UNCLAIMED: placement tried again.
 * 12. missingInstances — desired indices with no instance: placed.
 */
import { DEFAULT_CONVERGENCE_CONFIG, type ConvergenceConfig } from "./config";
import { cellIsAlive, lastSeenAt } from "./cells";
import { NO_HISTORY, stalledWithin, type ControlPlaneHistory, type Stall } from "./stalls";
import { restartDelayMs, restartDueAt } from "./restart-calculator";
import type {
  ActualInstance, ActualState, CellView, DesiredProcess, DesiredState, MarkLostAction, Plan, PlaceAction,
  PromoteAction, ReplaceAction, StopAction,
} from "./model";
import { isStarted } from "./model";

interface Context {
  /** Processes that should run now (empty of Docker processes while diego_docker is off). */
  running: Map<string, DesiredProcess>;
  /** Processes that would run but for the flag. */
  flagStopped: Set<string>;
  cells: Map<string, CellView>;
  /** Most ACTIVE cells are silent at once: they all count as live. */
  disrupted: boolean;
  now: number;
  config: ConvergenceConfig;
  /** The control plane's own stalls: not counted against cells. */
  stalls: readonly Stall[];
  /** Silent cells the LOST rate limit holds back this pass: live until their turn. */
  held: Set<string>;
}

function contextOf(desired: DesiredState, cells: CellView[], now: number, config: ConvergenceConfig, stalls: readonly Stall[], held: Set<string>): Context {
  const running = new Map<string, DesiredProcess>();
  const flagStopped = new Set<string>();
  for (const p of desired.processes) {
    if (p.lifecycle === "docker" && !desired.diego_docker) flagStopped.add(p.process_guid);
    else running.set(p.process_guid, p);
  }
  return { running, flagStopped, cells: new Map(cells.map((c) => [c.guid, c])), disrupted: isDisrupted(cells, now, config, stalls), now, config, stalls, held };
}

/** More than `disruptionThreshold` of three or more ACTIVE cells are silent. */
export function isDisrupted(cells: CellView[], now: number, config: ConvergenceConfig, stalls: readonly Stall[] = []): boolean {
  const active = cells.filter((c) => c.state === "ACTIVE");
  const silent = active.filter((c) => !cellIsAlive(c, now, config, stalls));
  return active.length >= 3 && silent.length > active.length * config.disruptionThreshold;
}

function isOnLiveCell(i: ActualInstance, ctx: Context): boolean {
  const cell = i.cell_guid === null ? undefined : ctx.cells.get(i.cell_guid);
  return cell !== undefined && (cellIsAlive(cell, ctx.now, ctx.config, ctx.stalls) || ctx.held.has(cell.guid) || (ctx.disrupted && cell.state === "ACTIVE"));
}

const placedOnCell = (i: ActualInstance) => i.cell_guid !== null;

/** ACTIVE cells silent past the TTL, the longest silent first. */
export function expiredCells(cells: CellView[], now: number, config: ConvergenceConfig, stalls: readonly Stall[] = []): MarkLostAction[] {
  return cells
    .filter((c) => c.state === "ACTIVE" && !cellIsAlive(c, now, config, stalls))
    .sort((a, b) => lastSeenAt(a) - lastSeenAt(b))
    .map((c) => ({ cell_guid: c.guid, reason: `no heartbeat for more than ${config.heartbeatTtlMs / 1000} s` }));
}

export function stoppingOnDeadCells(stopping: ActualInstance[], ctx: Context): StopAction[] {
  return stopping
    .filter((i) => !isOnLiveCell(i, ctx))
    .map((i) => ({ instance_guid: i.instance_guid, cause: "cell_lost", reason: "its cell is gone; nothing left to stop" }));
}

export function undesiredInstances(actual: ActualInstance[], ctx: Context): StopAction[] {
  const stops: StopAction[] = [];
  for (const i of actual) {
    const p = ctx.running.get(i.process_guid);
    if (ctx.flagStopped.has(i.process_guid)) {
      stops.push({ instance_guid: i.instance_guid, cause: "diego_docker_disabled", reason: "feature flag diego_docker is disabled" });
    } else if (!p) {
      stops.push({ instance_guid: i.instance_guid, cause: "process_not_desired", reason: "app stopped or process removed" });
    } else if (p.version !== i.process_version) {
      stops.push({ instance_guid: i.instance_guid, cause: "version_changed", reason: `process version changed to ${p.version}` });
    }
  }
  return stops;
}

const key = (i: { process_guid: string; index: number }) => `${i.process_guid}/${i.index}`;

function groupByIndex(instances: ActualInstance[]): Map<string, ActualInstance[]> {
  const groups = new Map<string, ActualInstance[]>();
  for (const i of instances) {
    const k = key(i);
    groups.set(k, [...(groups.get(k) ?? []), i]);
  }
  return groups;
}

/** Diego removes the EVACUATING/SUSPECT copy once the replacement is RUNNING or CRASHED. */
export function settledReplacements(
  copies: ActualInstance[],
  ordinary: ActualInstance[],
  ctx: Context,
): { stop: StopAction[]; promote: PromoteAction[] } {
  const siblings = groupByIndex(ordinary);
  const stop: StopAction[] = [];
  const promote: PromoteAction[] = [];
  for (const copy of copies) {
    const replacements = siblings.get(key(copy)) ?? [];
    const settled = replacements.find((r) => r.state === "RUNNING" || r.state === "CRASHED");
    if (copy.presence === "EVACUATING" && !isOnLiveCell(copy, ctx)) {
      stop.push({ instance_guid: copy.instance_guid, cause: "cell_lost", reason: "evacuating cell is gone" });
    } else if (settled) {
      stop.push({ instance_guid: copy.instance_guid, cause: "replacement_settled", reason: `replacement ${settled.instance_guid} is ${settled.state}` });
    } else if (copy.presence === "SUSPECT" && isOnLiveCell(copy, ctx)) {
      promote.push({ instance_guid: copy.instance_guid, reason: "its cell is heartbeating again" });
      for (const r of replacements) {
        stop.push({ instance_guid: r.instance_guid, cause: "suspect_returned", reason: `instance ${copy.instance_guid} is back before its replacement ran` });
      }
    }
  }
  return { stop, promote };
}

export function extraInstances(ordinary: ActualInstance[], ctx: Context): StopAction[] {
  return ordinary
    .filter((i) => i.index >= (ctx.running.get(i.process_guid)?.instances ?? 0))
    .sort((a, b) => b.index - a.index)
    .map((i) => ({ instance_guid: i.instance_guid, cause: "extra_index", reason: `index ${i.index} is beyond the desired instance count` }));
}

/** Which of two instances of an index to keep: the furthest along, then the newest. */
const STATE_RANK: Record<ActualState, number> = { RUNNING: 5, STARTING: 4, CLAIMED: 3, UNCLAIMED: 2, CRASHED: 1, STOPPING: 0 };

export function duplicateInstances(ordinary: ActualInstance[]): StopAction[] {
  const stops: StopAction[] = [];
  for (const group of groupByIndex(ordinary).values()) {
    if (group.length < 2) continue;
    const [keep, ...rest] = [...group].sort((a, b) => STATE_RANK[b.state] - STATE_RANK[a.state] || b.since - a.since);
    for (const i of rest) {
      stops.push({ instance_guid: i.instance_guid, cause: "duplicate", reason: `index ${i.index} already has ${keep!.instance_guid}` });
    }
  }
  return stops;
}


export function lostCellInstances(ordinary: ActualInstance[], ctx: Context): ReplaceAction[] {
  return ordinary
    .filter((i) => placedOnCell(i) && isStarted(i.state) && !isOnLiveCell(i, ctx))
    .map((i) => ({
      instance_guid: i.instance_guid, process_guid: i.process_guid, index: i.index, crash_count: i.crash_count,
      keep: i.state === "RUNNING" ? ("SUSPECT" as const) : null,
      reason: `cell ${i.cell_guid} stopped heartbeating`,
    }));
}

/**
 * A claim is unacknowledged once it is older than the claim timeout, not
 * counting the control plane's stalls, and its cell has heartbeated after
 * that without it: a live cell whose acknowledgement is merely late (the
 * control plane was slow to hand it the set or to take its report) keeps it.
 */
export function claimTimedOut(i: ActualInstance, cell: CellView, ctx: Pick<Context, "now" | "config" | "stalls">): boolean {
  const deadline = i.since + ctx.config.claimTimeoutMs;
  return ctx.now - i.since - stalledWithin(ctx.stalls, i.since, ctx.now) > ctx.config.claimTimeoutMs && lastSeenAt(cell) > deadline;
}

export function unacknowledgedClaims(ordinary: ActualInstance[], ctx: Context): ReplaceAction[] {
  return ordinary
    .filter((i) => i.state === "CLAIMED" && isOnLiveCell(i, ctx) && claimTimedOut(i, ctx.cells.get(i.cell_guid!)!, ctx))
    .map((i) => ({
      instance_guid: i.instance_guid, process_guid: i.process_guid, index: i.index, crash_count: i.crash_count, keep: null,
      avoid_cell: i.cell_guid!,
      reason: `cell ${i.cell_guid} did not acknowledge it within ${ctx.config.claimTimeoutMs / 1000} s`,
    }));
}

export function drainingCellInstances(ordinary: ActualInstance[], ctx: Context): ReplaceAction[] {
  return ordinary
    .filter((i) => isStarted(i.state) && i.cell_guid !== null && ctx.cells.get(i.cell_guid)?.state === "DRAINING")
    .map((i) => ({
      instance_guid: i.instance_guid, process_guid: i.process_guid, index: i.index, crash_count: i.crash_count,
      keep: i.state === "RUNNING" ? ("EVACUATING" as const) : null,
      reason: `cell ${i.cell_guid} is draining`,
    }));
}

export function crashedInstances(ordinary: ActualInstance[], ctx: Context): ReplaceAction[] {
  const restarts: ReplaceAction[] = [];
  for (const i of ordinary) {
    if (i.state !== "CRASHED") continue;
    const due = restartDueAt(i, ctx.config.restart);
    if (due === null || due > ctx.now) continue;
    const delay = restartDelayMs(i.crash_count, ctx.config.restart) ?? 0;
    restarts.push({
      instance_guid: i.instance_guid, process_guid: i.process_guid, index: i.index, crash_count: i.crash_count, keep: null,
      reason: delay === 0 ? `crashed ${i.crash_count} time(s); restarting at once` : `crashed ${i.crash_count} times; backoff of ${delay / 1000} s ended`,
    });
  }
  return restarts;
}

export function unplacedInstances(ordinary: ActualInstance[]): PlaceAction[] {
  return ordinary
    .filter((i) => i.state === "UNCLAIMED")
    .map((i) => ({ process_guid: i.process_guid, index: i.index, crash_count: i.crash_count, instance_guid: i.instance_guid, reason: "not placed yet" }));
}

export function missingInstances(present: ActualInstance[], ctx: Context): PlaceAction[] {
  const covered = new Set(present.map(key));
  const places: PlaceAction[] = [];
  for (const p of ctx.running.values()) {
    for (let index = 0; index < p.instances; index++) {
      if (covered.has(key({ process_guid: p.process_guid, index }))) continue;
      places.push({ process_guid: p.process_guid, index, crash_count: 0, instance_guid: null, reason: `index ${index} of ${p.instances} is missing` });
    }
  }
  return places;
}

/** The LOST rate limit: one cell per `lostCellIntervalMs`. */
export const mayMarkLost = (lastLostAt: number | null, now: number, config: Pick<ConvergenceConfig, "lostCellIntervalMs">): boolean =>
  lastLostAt === null || now - lastLostAt >= config.lostCellIntervalMs;

export function converge(
  desired: DesiredState,
  actual: ActualInstance[],
  cells: CellView[],
  now: number,
  config: ConvergenceConfig = DEFAULT_CONVERGENCE_CONFIG,
  { stalls, lastLostAt }: ControlPlaneHistory = NO_HISTORY,
): Plan {
  const expired = expiredCells(cells, now, config, stalls);
  const markLost = mayMarkLost(lastLostAt, now, config) ? expired.slice(0, 1) : [];
  const held = new Set(expired.slice(markLost.length).map((m) => m.cell_guid));
  const ctx = contextOf(desired, cells, now, config, stalls, held);
  const plan: Plan = { place: [], replace: [], stop: [], markLost: ctx.disrupted ? [] : markLost, promote: [] };
  const handled = new Set<string>();
  const unhandled = (list: ActualInstance[]) => list.filter((i) => !handled.has(i.instance_guid));
  const stop = (stops: StopAction[]) => {
    for (const s of stops) handled.add(s.instance_guid);
    plan.stop.push(...stops);
  };
  const replace = (replaces: ReplaceAction[]) => {
    for (const r of replaces) handled.add(r.instance_guid);
    plan.replace.push(...replaces);
  };

  const stopping = actual.filter((i) => i.state === "STOPPING");
  stop(stoppingOnDeadCells(stopping, ctx));
  const live = actual.filter((i) => i.state !== "STOPPING");
  stop(undesiredInstances(live, ctx));

  const copies = unhandled(live).filter((i) => i.presence !== "ORDINARY");
  const settled = settledReplacements(copies, unhandled(live).filter((i) => i.presence === "ORDINARY"), ctx);
  stop(settled.stop);
  plan.promote.push(...settled.promote);
  const promoted = new Set(settled.promote.map((p) => p.instance_guid));

  const ordinary = () => unhandled(live).filter((i) => i.presence === "ORDINARY" || promoted.has(i.instance_guid));
  stop(extraInstances(ordinary(), ctx));
  stop(duplicateInstances(ordinary()));
  replace(lostCellInstances(ordinary(), ctx));
  replace(drainingCellInstances(ordinary(), ctx));
  replace(unacknowledgedClaims(ordinary(), ctx));
  replace(crashedInstances(ordinary(), ctx));
  plan.place.push(...unplacedInstances(ordinary()));
  // Replaced instances still cover their index: their replacement is in plan.replace.
  const stopped = new Set(plan.stop.map((s) => s.instance_guid));
  const present = live.filter((i) => (i.presence === "ORDINARY" || promoted.has(i.instance_guid)) && !stopped.has(i.instance_guid));
  plan.place.push(...missingInstances(present, ctx));
  return plan;
}
