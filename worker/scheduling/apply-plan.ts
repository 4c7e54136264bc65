/**
 * @module Turns a convergence plan and its placements into D1 writes
 * (bbs controllers/lrp_convergence_controller.go's half of the work).
 *
 * - A stopped instance that a cell runs becomes STOPPING (its cell stops it and
 *   reports STOPPED, then the row goes); one no cell runs goes at once.
 * - A replaced instance keeps its row as SUSPECT/EVACUATING, or goes; the new
 *   instance copies its spec (new guid, same index, crash count carried), so an
 *   env edit still reaches instances only through a restart.
 * - A new instance snapshots the process, app env and droplet now.
 * - Every cell whose set changed gets `desired_version + 1` in the same batch
 *   as the change, and routers' `routes_table` moves when routability does.
 *
 * Writes go in batches of at most BATCH_LIMIT statements; each batch carries the
 * version bumps for the cells it touched, so even a pass cut half-way leaves no
 * change a cell could miss.
 */
import { eq, inArray, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "../env";
import type { ConvergenceConfig } from "../../shared/convergence/config";
import { cellIsAlive } from "../../shared/convergence/cells";
import type { Plan } from "../../shared/convergence/model";
import { place, type PlacementCell, type PlacementRequest } from "../../shared/convergence/place";
import { builds, cells, instances } from "../db/schema";
import { auditEvent, SYSTEM_ACTOR, type AuditEventType } from "../db/audit";
import { bumpRouteTable } from "../db/counters";
import { newGuid } from "../http/ids";
import type { InstanceFacts, Snapshot } from "./snapshot";
import { storedSpecSchema, type StoredSpec } from "./stored-spec";
import { isStarted } from "../../shared/convergence/model";
import { paramChunks } from "../db/param-chunks";
import { buildInstanceSpec, reidentifySpec } from "./instance-spec";

type Statement = BatchItem<"sqlite">;

/** Statements per D1 batch (D1 caps queries per invocation; each batch stays one transaction). */
export const BATCH_LIMIT = 400;

export interface PassOutcome {
  placed: { instance_guid: string; cell_guid: string }[];
  unplaced: { instance_guid: string; placement_error: string }[];
  stopped: string[];
  replaced: string[];
  lost_cells: string[];
}

interface Write {
  statement: Statement;
  /** Cells whose desired set this write changes. */
  cells?: (string | null)[];
  routes?: boolean;
}

function placementCells(snap: Snapshot, now: number, config: ConvergenceConfig): PlacementCell[] {
  const eligible = new Map<string, PlacementCell>();
  for (const c of snap.cells) {
    if (c.state !== "ACTIVE" || !cellIsAlive(c, now, config)) continue;
    eligible.set(c.guid, {
      guid: c.guid, zone: c.zone, capacity: c.capacity, allocated: { memory_mb: 0, disk_mb: 0, containers: 0 },
      starting: 0, processes: {}, cached_layers: c.cached_layers,
    });
  }
  for (const i of snap.actual) {
    const cell = i.cell_guid === null ? undefined : eligible.get(i.cell_guid);
    if (!cell || i.state === "CRASHED") continue;
    cell.allocated.memory_mb += i.memory_mb;
    cell.allocated.disk_mb += i.disk_mb;
    cell.allocated.containers += 1;
    if (i.state === "CLAIMED" || i.state === "STARTING") cell.starting += 1;
    if (i.state !== "STOPPING") cell.processes[i.process_guid] = (cell.processes[i.process_guid] ?? 0) + 1;
  }
  return [...eligible.values()];
}

/** Stored specs of these instances; one that does not parse (kept `{}` after a spec error) is left out. */
async function loadSpecs(db: Db, guids: string[]): Promise<Map<string, StoredSpec>> {
  const out = new Map<string, StoredSpec>();
  for (const part of paramChunks(guids)) {
    const rows = await db.select({ guid: instances.instanceGuid, spec: instances.spec }).from(instances)
      .where(inArray(instances.instanceGuid, part));
    for (const r of rows) {
      const parsed = storedSpecSchema.safeParse(r.spec);
      if (parsed.success) out.set(r.guid, parsed.data);
    }
  }
  return out;
}

type NewRow = typeof instances.$inferInsert;

/** An instance waiting for a cell: an existing UNCLAIMED row, or a new row to insert. */
type Target = { existing: InstanceFacts; row?: undefined; respec?: StoredSpec } | { existing?: undefined; row: NewRow };

type Pending = Target & { key: string; request: PlacementRequest; reason: string };

const appOf = (t: Target) => (t.existing ? t.existing.app_guid : t.row.appGuid);
const indexOf = (t: Target) => (t.existing ? t.existing.index : t.row.index);

export async function applyPlan(db: Db, snap: Snapshot, plan: Plan, now: number, config: ConvergenceConfig): Promise<PassOutcome> {
  const facts = new Map(snap.actual.map((i) => [i.instance_guid, i]));
  const writes: Write[] = [];
  const outcome: PassOutcome = { placed: [], unplaced: [], stopped: [], replaced: [], lost_cells: [] };
  const events = new Map<string, { type: AuditEventType; app: string; data: { reason: string; instances: Record<string, unknown>[] } }>();
  const record = (type: AuditEventType, app: string, reason: string, instance: Record<string, unknown>) => {
    const k = `${type}\u0000${app}\u0000${reason}`;
    const e = events.get(k) ?? { type, app, data: { reason, instances: [] } };
    e.data.instances.push(instance);
    events.set(k, e);
  };
  const byGuid = (guid: string) => eq(instances.instanceGuid, guid);
  const aliveCells = new Set(snap.cells.filter((c) => cellIsAlive(c, now, config)).map((c) => c.guid));

  /** Removes an instance from its cell's set: STOPPING while a live cell still runs it, else gone. */
  const retire = (i: InstanceFacts) => {
    const inSet = isStarted(i.state);
    const stillRunsIt = inSet && i.cell_guid !== null && aliveCells.has(i.cell_guid);
    writes.push({
      statement: stillRunsIt
        ? db.update(instances).set({ state: "STOPPING", since: now }).where(byGuid(i.instance_guid))
        : db.delete(instances).where(byGuid(i.instance_guid)),
      cells: inSet ? [i.cell_guid] : [],
      routes: i.state === "RUNNING",
    });
  };

  for (const lost of plan.markLost) {
    const cell = snap.cells.find((c) => c.guid === lost.cell_guid);
    // Only if no heartbeat arrived since the snapshot.
    const seen = cell?.last_heartbeat_at ?? null;
    writes.push({
      statement: db.update(cells).set({ state: "LOST" }).where(sql`${cells.guid} = ${lost.cell_guid} and ${cells.state} = 'ACTIVE' and ${cells.lastHeartbeatAt} is ${seen}`),
    });
    outcome.lost_cells.push(lost.cell_guid);
  }

  for (const stop of plan.stop) {
    const i = facts.get(stop.instance_guid);
    if (!i) continue;
    retire(i);
    outcome.stopped.push(i.instance_guid);
    record("app.instances_stopped", i.app_guid, stop.reason, { instance_guid: i.instance_guid, index: i.index, cause: stop.cause, cell_guid: i.cell_guid });
  }

  for (const p of plan.promote) {
    writes.push({ statement: db.update(instances).set({ presence: "ORDINARY" }).where(byGuid(p.instance_guid)) });
  }

  const pending: Pending[] = [];
  const unplaceable: (Target & { key: string; error: string })[] = [];
  const newRow = (
    i: { process_guid: string; app_guid: string; index: number; version: string; crash_count: number },
    instanceGuid: string,
    spec: StoredSpec | Record<string, never>,
  ): NewRow => ({
    instanceGuid, processGuid: i.process_guid, appGuid: i.app_guid, index: i.index, processVersion: i.version,
    spec, cellGuid: null, state: "UNCLAIMED" as const, presence: "ORDINARY" as const, since: now, crashCount: i.crash_count, placementError: null,
  });
  const request = (key: string, process_guid: string, index: number, memory_mb: number, disk_mb: number, avoid?: string): PlacementRequest => ({
    key, process_guid, index, memory_mb, disk_mb, ...(avoid === undefined ? {} : { avoid }),
    layers: snap.desired.processes.find((d) => d.process_guid === process_guid)?.layers ?? [],
  });

  const specs = await loadSpecs(db, [...plan.replace.map((r) => r.instance_guid), ...plan.place.flatMap((p) => (p.instance_guid ? [p.instance_guid] : []))]);
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
    const oldSpec = found.spec;
    if (r.keep) {
      writes.push({ statement: db.update(instances).set({ presence: r.keep }).where(byGuid(old.instance_guid)) });
    } else {
      retire(old);
    }
    const spec = reidentifySpec(oldSpec, newGuid());
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
    const row = newRow(base, guid, built.spec);
    pending.push({ key: guid, row, request: request(built.spec.instance_guid, p.process_guid, p.index, built.spec.memory_mb, built.spec.disk_mb), reason: p.reason });
  }

  const placement = place(pending.map((p) => p.request), placementCells(snap, now, config));
  const winners = new Map(placement.placed.map((w) => [w.key, w.cell_guid]));
  const losers = new Map(placement.failed.map((f) => [f.key, f.placement_error]));
  for (const p of pending) {
    const cell = winners.get(p.key);
    if (cell) {
      const claim = { cellGuid: cell, state: "CLAIMED" as const, since: now, placementError: null };
      writes.push({
        statement: p.existing
          ? db.update(instances).set({ ...claim, ...(p.respec ? { spec: p.respec } : {}) }).where(byGuid(p.key))
          : db.insert(instances).values({ ...p.row, ...claim }),
        cells: [cell],
      });
      outcome.placed.push({ instance_guid: p.key, cell_guid: cell });
      record("app.instances_placed", appOf(p), p.reason, { instance_guid: p.key, index: p.request.index, cell_guid: cell });
    } else {
      unplaceable.push({ ...p, error: losers.get(p.key) ?? "found no compatible cell" });
    }
  }
  for (const u of unplaceable) {
    // A retry that fails the same way changes nothing and records nothing.
    if (u.existing?.placement_error === u.error) continue;
    writes.push({
      statement: u.existing
        ? db.update(instances).set({ placementError: u.error }).where(byGuid(u.key))
        : db.insert(instances).values({ ...u.row, placementError: u.error }),
    });
    outcome.unplaced.push({ instance_guid: u.key, placement_error: u.error });
    record("app.placement_failed", appOf(u), u.error, { instance_guid: u.key, index: indexOf(u) });
  }

  writes.push(...assignStagingTasks(db, snap, now, config));

  for (const e of events.values()) {
    const app = snap.apps.get(e.app);
    writes.push({
      statement: auditEvent(db, {
        type: e.type, actor: SYSTEM_ACTOR, target: { guid: e.app, type: "app", name: app?.name ?? e.app },
        spaceGuid: app?.spaceGuid ?? null, data: e.data, now: new Date(now),
      }),
    });
  }

  await commit(db, writes);
  return outcome;
}

/**
 * Cell-staged builds travel in one live cell's desired set: the one with the
 * fewest staging tasks. A build whose cell died moves to another.
 */
function assignStagingTasks(db: Db, snap: Snapshot, now: number, config: ConvergenceConfig): Write[] {
  const live = snap.cells.filter((c) => c.state === "ACTIVE" && cellIsAlive(c, now, config)).map((c) => c.guid).sort();
  if (live.length === 0) return [];
  const load = new Map(live.map((g) => [g, 0]));
  for (const b of snap.stagingBuilds) if (b.cellGuid && load.has(b.cellGuid)) load.set(b.cellGuid, load.get(b.cellGuid)! + 1);
  const writes: Write[] = [];
  for (const b of snap.stagingBuilds) {
    if (b.cellGuid && load.has(b.cellGuid)) continue;
    const [chosen] = [...load.entries()].sort((x, y) => x[1] - y[1]);
    const cell = chosen![0];
    load.set(cell, chosen![1] + 1);
    writes.push({ statement: db.update(builds).set({ stagingCellGuid: cell }).where(eq(builds.guid, b.guid)), cells: [cell, b.cellGuid] });
  }
  return writes;
}

/** Runs the writes in batches, each ending with the version bumps for what it touched. */
async function commit(db: Db, writes: Write[]): Promise<void> {
  for (let start = 0; start < writes.length; start += BATCH_LIMIT) {
    const slice = writes.slice(start, start + BATCH_LIMIT);
    const touched = new Set(slice.flatMap((w) => (w.cells ?? []).filter((g): g is string => g !== null)));
    const routes = slice.some((w) => w.routes);
    const statements: Statement[] = slice.map((w) => w.statement);
    const guids = [...touched];
    for (const part of paramChunks(guids)) {
      statements.push(db.update(cells).set({ desiredVersion: sql`${cells.desiredVersion} + 1` }).where(inArray(cells.guid, part)));
    }
    if (routes) statements.push(bumpRouteTable(db));
    await db.batch(statements as [Statement, ...Statement[]]);
  }
}
