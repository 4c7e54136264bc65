/**
 * @module The scheduling step, pure: a convergence plan becomes a write-set
 * (bbs controllers/lrp_convergence_controller.go's half of the work, without
 * its I/O). It places, snapshots specs, records audit events and assigns
 * staging tasks; `commitWriteSet` (worker/db/write-set.ts) turns the result
 * into statements.
 *
 * - A stopped instance that a live cell runs becomes STOPPING (its cell stops
 *   it and reports STOPPED, then the row goes); one no cell runs goes at once.
 * - A replaced instance keeps its row as SUSPECT/EVACUATING, or goes; the new
 *   instance copies its spec (new guid, same index, crash count carried), so an
 *   env edit still reaches instances only through a restart.
 * - A new instance snapshots the process, app env and droplet now.
 * - Each write names the cells whose desired set it changes and whether it
 *   changes what routers route, so the DB layer bumps exactly those versions.
 */
import type { ConvergenceConfig } from "../../shared/convergence/config";
import { cellIsAlive } from "../../shared/convergence/cells";
import type { Stall } from "../../shared/convergence/stalls";
import { isStarted, type Plan, type Presence } from "../../shared/convergence/model";
import { place, type PlacementCell, type PlacementRequest } from "../../shared/convergence/place";
import type { instances } from "../db/schema";
import { SYSTEM_ACTOR, type AuditEventInput, type AuditEventType } from "../db/audit";
import type { InstanceFacts, Snapshot } from "./snapshot";
import type { StoredSpec } from "./stored-spec";
import { buildInstanceSpec, reidentifySpec } from "./instance-spec";
import type { DeploymentChange, DeploymentGuard } from "../deployments/updater";

export type NewInstanceRow = typeof instances.$inferInsert;

/** One write of a pass, as data. */
export type WriteOp = (
  | { op: "mark_lost"; cell_guid: string; last_heartbeat_at: number | null }
  | { op: "stopping"; instance_guid: string; since: number }
  | { op: "forget"; instance_guid: string }
  | { op: "presence"; instance_guid: string; presence: Presence }
  | { op: "claim"; instance_guid: string; cell_guid: string; since: number; spec?: StoredSpec }
  | { op: "placement_error"; instance_guid: string; error: string }
  | { op: "insert"; row: NewInstanceRow }
  | { op: "assign_staging"; build_guid: string; cell_guid: string }
  | { op: "audit"; event: AuditEventInput }
  // The deployment updater's steps (worker/deployments/pass.ts).
  | { op: "process_instances"; process_guid: string; instances: number; guard: DeploymentGuard }
  | { op: "process_remove"; process_guid: string; guard: DeploymentGuard }
  | { op: "deployment"; guard: DeploymentGuard; set: DeploymentChange }
) & {
  /** Cells whose desired set this write changes. */
  cells?: string[];
  /** It changes what routers route. */
  routes?: boolean;
};

export interface PassOutcome {
  placed: { instance_guid: string; cell_guid: string }[];
  unplaced: { instance_guid: string; placement_error: string }[];
  stopped: string[];
  replaced: string[];
  lost_cells: string[];
}

export interface WriteSetInput {
  snap: Snapshot;
  plan: Plan;
  /** Stored specs of the instances the plan replaces or places again (loaded by the DB layer). */
  specs: Map<string, StoredSpec>;
  now: number;
  config: ConvergenceConfig;
  newGuid: () => string;
  /** The control plane's own stalls: a cell silent only through them is live. */
  stalls?: readonly Stall[];
}

function placementCells(snap: Snapshot, now: number, config: ConvergenceConfig, stalls: readonly Stall[]): PlacementCell[] {
  const eligible = new Map<string, PlacementCell>();
  for (const c of snap.cells) {
    if (c.state !== "ACTIVE" || !cellIsAlive(c, now, config, stalls)) continue;
    const load = snap.load.get(c.guid);
    eligible.set(c.guid, {
      guid: c.guid, zone: c.zone, capacity: c.capacity, allocated: { ...(load?.allocated ?? { memory_mb: 0, disk_mb: 0, containers: 0 }) },
      starting: load?.starting ?? 0, processes: {}, cached_layers: c.cached_layers,
    });
  }
  // Spreading only weighs the processes being placed, and the snapshot holds each of them whole.
  for (const i of snap.actual) {
    const cell = i.cell_guid === null ? undefined : eligible.get(i.cell_guid);
    if (!cell || i.state === "CRASHED" || i.state === "STOPPING") continue;
    cell.processes[i.process_guid] = (cell.processes[i.process_guid] ?? 0) + 1;
  }
  return [...eligible.values()];
}

/** An instance waiting for a cell: an existing UNCLAIMED row, or a new row to insert. */
type Target = { existing: InstanceFacts; row?: undefined; respec?: StoredSpec } | { existing?: undefined; row: NewInstanceRow };

type Pending = Target & { key: string; request: PlacementRequest; reason: string };

const appOf = (t: Target) => (t.existing ? t.existing.app_guid : t.row.appGuid);
const indexOf = (t: Target) => (t.existing ? t.existing.index : t.row.index);

/** The instances whose stored specs the plan needs: replaced ones, and unplaced ones placed again. */
export const specsNeeded = (plan: Plan): string[] => [
  ...plan.replace.map((r) => r.instance_guid),
  ...plan.place.flatMap((p) => (p.instance_guid ? [p.instance_guid] : [])),
];

export function buildWriteSet({ snap, plan, specs, now, config, newGuid, stalls = [] }: WriteSetInput): { writes: WriteOp[]; outcome: PassOutcome } {
  const facts = new Map(snap.actual.map((i) => [i.instance_guid, i]));
  const writes: WriteOp[] = [];
  const outcome: PassOutcome = { placed: [], unplaced: [], stopped: [], replaced: [], lost_cells: [] };
  const events = new Map<string, { type: AuditEventType; app: string; data: { reason: string; instances: Record<string, unknown>[] } }>();
  const record = (type: AuditEventType, app: string, reason: string, instance: Record<string, unknown>) => {
    const k = `${type}\u0000${app}\u0000${reason}`;
    const e = events.get(k) ?? { type, app, data: { reason, instances: [] } };
    e.data.instances.push(instance);
    events.set(k, e);
  };
  const aliveCells = new Set(snap.cells.filter((c) => cellIsAlive(c, now, config, stalls)).map((c) => c.guid));

  /** Removes an instance from its cell's set: STOPPING while a live cell still runs it, else gone. */
  const retire = (i: InstanceFacts) => {
    const inSet = isStarted(i.state);
    const stillRunsIt = inSet && i.cell_guid !== null && aliveCells.has(i.cell_guid);
    const cells = inSet && i.cell_guid !== null ? [i.cell_guid] : [];
    writes.push(stillRunsIt
      ? { op: "stopping", instance_guid: i.instance_guid, since: now, cells, routes: i.state === "RUNNING" }
      : { op: "forget", instance_guid: i.instance_guid, cells, routes: i.state === "RUNNING" });
  };

  for (const lost of plan.markLost) {
    const cell = snap.cells.find((c) => c.guid === lost.cell_guid);
    // Written only if no heartbeat arrived since the snapshot.
    writes.push({ op: "mark_lost", cell_guid: lost.cell_guid, last_heartbeat_at: cell?.last_heartbeat_at ?? null });
    outcome.lost_cells.push(lost.cell_guid);
  }

  for (const stop of plan.stop) {
    const i = facts.get(stop.instance_guid);
    if (!i) continue;
    retire(i);
    outcome.stopped.push(i.instance_guid);
    record("app.instances_stopped", i.app_guid, stop.reason, { instance_guid: i.instance_guid, index: i.index, cause: stop.cause, cell_guid: i.cell_guid });
  }

  for (const p of plan.promote) writes.push({ op: "presence", instance_guid: p.instance_guid, presence: "ORDINARY" });

  const pending: Pending[] = [];
  const unplaceable: (Target & { key: string; error: string })[] = [];
  const newRow = (
    i: { process_guid: string; app_guid: string; index: number; version: string; crash_count: number },
    instanceGuid: string,
    spec: StoredSpec | Record<string, never>,
  ): NewInstanceRow => ({
    instanceGuid, processGuid: i.process_guid, appGuid: i.app_guid, index: i.index, processVersion: i.version,
    spec, cellGuid: null, state: "UNCLAIMED", presence: "ORDINARY", since: now, crashCount: i.crash_count, placementError: null,
  });
  const layersOf = new Map(snap.desired.processes.map((d) => [d.process_guid, d.layers]));
  const request = (key: string, process_guid: string, index: number, memory_mb: number, disk_mb: number, avoid?: string): PlacementRequest => ({
    key, process_guid, index, memory_mb, disk_mb, ...(avoid === undefined ? {} : { avoid }), layers: layersOf.get(process_guid) ?? [],
  });

  /** The instance's stored spec, or a fresh one when it has none usable. */
  const specFor = (i: InstanceFacts): { spec: StoredSpec; fresh: boolean } | { error: string } => {
    const stored = specs.get(i.instance_guid);
    if (stored) return { spec: stored, fresh: false };
    const desired = snap.rows.get(i.process_guid);
    if (!desired) return { error: "the process is no longer desired" };
    const built = buildInstanceSpec(desired, { instanceGuid: i.instance_guid, index: i.index }, snap.registryAccessVersion);
    return "error" in built ? built : { spec: built.spec, fresh: true };
  };
  for (const r of plan.replace) {
    const old = facts.get(r.instance_guid);
    const found = old && specFor(old);
    if (!old || !found || "error" in found) continue;
    if (r.keep) writes.push({ op: "presence", instance_guid: old.instance_guid, presence: r.keep });
    else retire(old);
    const spec = reidentifySpec(found.spec, newGuid());
    const row = newRow({ ...old, version: old.process_version, crash_count: r.crash_count }, spec.instance_guid, spec);
    pending.push({ key: spec.instance_guid, row, request: request(spec.instance_guid, old.process_guid, old.index, spec.memory_mb, spec.disk_mb, r.avoid_cell), reason: r.reason });
    outcome.replaced.push(old.instance_guid);
    record(r.keep === "SUSPECT" ? "app.instance_lost" : "app.instances_replaced", old.app_guid, r.reason, {
      instance_guid: old.instance_guid, index: old.index, replacement_guid: spec.instance_guid, kept_as: r.keep, crash_count: r.crash_count,
    });
  }

  for (const p of plan.place) {
    if (p.instance_guid !== null) {
      const existing = facts.get(p.instance_guid);
      if (!existing) continue;
      const found = specFor(existing);
      if ("error" in found) {
        unplaceable.push({ key: existing.instance_guid, existing, error: found.error });
        continue;
      }
      pending.push({
        key: existing.instance_guid, existing, respec: found.fresh ? found.spec : undefined, reason: p.reason,
        request: request(existing.instance_guid, existing.process_guid, existing.index, found.spec.memory_mb, found.spec.disk_mb),
      });
      continue;
    }
    const desired = snap.rows.get(p.process_guid);
    if (!desired) continue;
    const guid = newGuid();
    const built = buildInstanceSpec(desired, { instanceGuid: guid, index: p.index }, snap.registryAccessVersion);
    const base = { process_guid: p.process_guid, app_guid: desired.app.guid, index: p.index, version: desired.process.version, crash_count: p.crash_count };
    if ("error" in built) {
      // Kept UNCLAIMED with the error, so stats show why and the next passes do not record it again.
      unplaceable.push({ key: guid, row: newRow(base, guid, {}), error: built.error });
      continue;
    }
    pending.push({ key: guid, row: newRow(base, guid, built.spec), request: request(guid, p.process_guid, p.index, built.spec.memory_mb, built.spec.disk_mb), reason: p.reason });
  }

  const placement = place(pending.map((p) => p.request), placementCells(snap, now, config, stalls));
  const winners = new Map(placement.placed.map((w) => [w.key, w.cell_guid]));
  const losers = new Map(placement.failed.map((f) => [f.key, f.placement_error]));
  for (const p of pending) {
    const cell = winners.get(p.key);
    if (!cell) {
      unplaceable.push({ ...p, error: losers.get(p.key) ?? "found no compatible cell" });
      continue;
    }
    writes.push(p.existing
      ? { op: "claim", instance_guid: p.key, cell_guid: cell, since: now, ...(p.respec ? { spec: p.respec } : {}), cells: [cell] }
      : { op: "insert", row: { ...p.row, cellGuid: cell, state: "CLAIMED", since: now, placementError: null }, cells: [cell] });
    outcome.placed.push({ instance_guid: p.key, cell_guid: cell });
    record("app.instances_placed", appOf(p), p.reason, { instance_guid: p.key, index: p.request.index, cell_guid: cell });
  }
  for (const u of unplaceable) {
    // A retry that fails the same way changes nothing and records nothing.
    if (u.existing?.placement_error === u.error) continue;
    writes.push(u.existing
      ? { op: "placement_error", instance_guid: u.key, error: u.error }
      : { op: "insert", row: { ...u.row, placementError: u.error } });
    outcome.unplaced.push({ instance_guid: u.key, placement_error: u.error });
    record("app.placement_failed", appOf(u), u.error, { instance_guid: u.key, index: indexOf(u) });
  }

  writes.push(...assignStagingTasks(snap, now, config, stalls));

  for (const e of events.values()) {
    const app = snap.apps.get(e.app);
    writes.push({
      op: "audit",
      event: {
        type: e.type, actor: SYSTEM_ACTOR, target: { guid: e.app, type: "app", name: app?.name ?? e.app },
        spaceGuid: app?.spaceGuid ?? null, data: e.data, now: new Date(now),
      },
    });
  }
  return { writes, outcome };
}

/**
 * Cell-staged builds travel in one live cell's desired set: the one with the
 * fewest staging tasks. A build whose cell died moves to another.
 */
function assignStagingTasks(snap: Snapshot, now: number, config: ConvergenceConfig, stalls: readonly Stall[]): WriteOp[] {
  const live = snap.cells.filter((c) => c.state === "ACTIVE" && cellIsAlive(c, now, config, stalls)).map((c) => c.guid).sort();
  if (live.length === 0) return [];
  const load = new Map(live.map((g) => [g, 0]));
  for (const b of snap.stagingBuilds) if (b.cellGuid && load.has(b.cellGuid)) load.set(b.cellGuid, load.get(b.cellGuid)! + 1);
  const writes: WriteOp[] = [];
  for (const b of snap.stagingBuilds) {
    if (b.cellGuid && load.has(b.cellGuid)) continue;
    const [chosen] = [...load.entries()].sort((x, y) => x[1] - y[1]);
    const cell = chosen![0];
    load.set(cell, chosen![1] + 1);
    writes.push({ op: "assign_staging", build_guid: b.guid, cell_guid: cell, cells: b.cellGuid ? [cell, b.cellGuid] : [cell] });
  }
  return writes;
}
