/**
 * @module Applying what cells report (heartbeats and state changes) to D1: one
 * batch per message, so a report either lands whole or not at all. Decisions
 * are `decideReport`'s; this module loads rows and turns decisions into writes.
 */
import { eq, inArray, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "../env";
import type { RestartPolicy } from "../../shared/convergence/config";
import type { Heartbeat } from "../../shared/protocol/heartbeat";
import type { InstanceReport } from "../../shared/protocol/instance";
import { apps, cells, deployments, instances, processes } from "../db/schema";
import type { ApiLineEvent } from "../logs/api-lines";
import { auditEvent, type AuditEventInput } from "../db/audit";
import { versionBumps, type VersionSource } from "./versions";
import type { WakeScope } from "./wake-scope";
import { decideReport, type InstanceRow } from "./report-decision";
import { paramChunks } from "../db/param-chunks";

export interface ReportOutcome {
  /** Reports refused: the instance is not (or no longer) placed on this cell. */
  rejected: { instance_guid: string; reason: string }[];
  /** What convergence should look at (a crash, a replacement now RUNNING, a cell back or resized); absent when nothing. */
  wake?: WakeScope;
  /** Long-poll sources whose versions the report moved (routes, the cell's own set when a crashed instance left it). */
  sources: VersionSource[];
  /** Crashes recorded, for their apps' API lines. */
  appEvents?: ApiLineEvent[];
}

interface LoadedRow extends InstanceRow {
  appGuid: string;
  index: number;
  appName: string | null;
  spaceGuid: string | null;
  processGuid: string;
  processType: string | null;
  processVersion: string;
}


/**
 * InstanceRow.awaited: another row of the same index (the outer query's table is `instances`), or an ACTIVE deployment of its
 * app, the ones a pass steps (deployments/facts.ts).
 */
const awaited = sql<number>`(exists (select 1 from ${instances} as twin where twin.process_guid = ${instances.processGuid} and twin."index" = ${instances.index} and twin.instance_guid <> ${instances.instanceGuid})
  or exists (select 1 from ${deployments} where ${deployments.appGuid} = ${instances.appGuid} and ${deployments.statusValue} = 'ACTIVE'))`.mapWith(Boolean);

const rowColumns = {
  instanceGuid: instances.instanceGuid, cellGuid: instances.cellGuid, state: instances.state, presence: instances.presence,
  since: instances.since, crashCount: instances.crashCount, hostPort: instances.hostPort, appGuid: instances.appGuid,
  index: instances.index, appName: apps.name, spaceGuid: apps.spaceGuid,
  processGuid: instances.processGuid, processType: processes.type, processVersion: instances.processVersion, awaited,
};

/**
 * The same, for a batch (where drizzle maps rows by column name, so no join): the app's name and space and the process's type by subquery.
 * A heartbeat reads every instance of its cell and seldom carries a change (the report came first), so it does not ask whether a pass
 * awaits one: a RUNNING it carries wakes one, as any did before.
 */
const cellRowColumns = {
  ...rowColumns,
  // Named: a column called "1" would sort first among the batch row's keys and shift every field.
  awaited: sql<number>`1`.mapWith(Boolean).as("awaited"),
  appName: sql<string | null>`(select ${apps.name} from ${apps} where ${apps.guid} = ${instances.appGuid})`,
  spaceGuid: sql<string | null>`(select ${apps.spaceGuid} from ${apps} where ${apps.guid} = ${instances.appGuid})`,
  processType: sql<string | null>`(select ${processes.type} from ${processes} where ${processes.guid} = ${instances.processGuid})`,
};

async function loadRows(db: Db, guids: string[]): Promise<Map<string, LoadedRow>> {
  const out = new Map<string, LoadedRow>();
  for (const part of paramChunks([...new Set(guids)])) {
    const rows = await db.select(rowColumns).from(instances)
      .leftJoin(apps, eq(apps.guid, instances.appGuid))
      .leftJoin(processes, eq(processes.guid, instances.processGuid))
      .where(inArray(instances.instanceGuid, part));
    for (const r of rows) out.set(r.instanceGuid, r);
  }
  return out;
}

type Statement = BatchItem<"sqlite">;

function decisionsToStatements(
  db: Db,
  actor: AuditEventInput["actor"],
  cellGuid: string,
  rows: Map<string, LoadedRow>,
  reports: InstanceReport[],
  now: number,
  policy: RestartPolicy,
): { statements: Statement[]; outcome: ReportOutcome } {
  const statements: Statement[] = [];
  const rejected: ReportOutcome["rejected"] = [];
  const wakeApps = new Set<string>();
  const appEvents: ApiLineEvent[] = [];
  let routes = false;
  let leftSet = false;
  for (const report of reports) {
    const row = rows.get(report.instance_guid);
    const d = decideReport(row, cellGuid, report, now, policy);
    if (d.kind === "reject") rejected.push({ instance_guid: report.instance_guid, reason: d.reason });
    if (!row || d.kind === "reject" || d.kind === "ignore") continue;
    const byGuid = eq(instances.instanceGuid, row.instanceGuid);
    if (d.kind === "delete") {
      statements.push(db.delete(instances).where(byGuid));
      routes ||= d.wasRoutable;
      leftSet ||= d.leftSet;
      wakeApps.add(row.appGuid);
      continue;
    }
    statements.push(db.update(instances).set({ ...d.change, lastReportAt: now }).where(byGuid));
    routes ||= d.routesChanged;
    leftSet ||= d.leftSet;
    if (d.converge) wakeApps.add(row.appGuid);
    if (d.crash) {
      const target = { guid: row.appGuid, type: "app", name: row.appName ?? row.appGuid };
      // CC's crash payload (instance, index, cell_id, exit_status, exit_description, reason, crash_count, crash_timestamp, version).
      const payload = {
        instance: row.instanceGuid, index: row.index, cell_id: cellGuid,
        exit_status: d.crash.exit_status, exit_signal: d.crash.exit_signal, oom: d.crash.oom,
        exit_description: d.crash.reason, reason: d.crash.oom ? "OOM" : "CRASHED", crash_count: d.crash.crash_count,
        crash_timestamp: now, version: row.processVersion,
      };
      const processType = row.processType ?? "web";
      // CC records the crash twice: the app's (app.crash) and its process's (audit.app.process.crash, by the process).
      statements.push(
        auditEvent(db, { type: "app.crash", actor, target, spaceGuid: row.spaceGuid, data: payload, now: new Date(now) }),
        auditEvent(db, {
          type: "audit.app.process.crash",
          actor: { guid: row.processGuid, type: "v3-process", name: processType },
          target, spaceGuid: row.spaceGuid, data: payload, now: new Date(now),
        }),
      );
      appEvents.push({ type: "audit.app.process.crash", appGuid: row.appGuid, processType, payload });
    }
  }
  const bumps = versionBumps(db, { cells: leftSet ? [cellGuid] : [], routes });
  statements.push(...bumps.statements);
  const outcome: ReportOutcome = {
    rejected, sources: bumps.sources, ...(wakeApps.size > 0 ? { wake: { apps: [...wakeApps] } } : {}), ...(appEvents.length > 0 ? { appEvents } : {}),
  };
  return { statements, outcome };
}

/** `POST /v3/cells/:id/instances`: all reports land, or (any rejected) none. */
export async function recordInstanceReports(
  db: Db,
  actor: AuditEventInput["actor"],
  cellGuid: string,
  reports: InstanceReport[],
  now: number,
  policy: RestartPolicy,
): Promise<ReportOutcome> {
  const rows = await loadRows(db, reports.map((r) => r.instance_guid));
  const { statements, outcome } = decisionsToStatements(db, actor, cellGuid, rows, reports, now, policy);
  if (outcome.rejected.length === 0 && statements.length > 0) await db.batch(statements as [Statement, ...Statement[]]);
  return outcome;
}

/**
 * `POST /v3/cells/:id/heartbeat`: renews the cell's presence and resources,
 * applies every report it carries (reports for instances no longer on the cell
 * are skipped: the desired set tells the cell to drop them), and forgets
 * STOPPING instances the cell no longer lists (it has stopped them).
 *
 * Presence first, in one round trip that also reads the cell's own rows (never
 * the fleet's): a live cell stays alive whatever else is slow. A steady cell
 * (nothing changed) costs that one batch; reports that change rows take a
 * second, with their audit events and version bumps.
 */
export async function recordHeartbeat(
  db: Db,
  actor: AuditEventInput["actor"],
  cellGuid: string,
  heartbeat: Heartbeat,
  now: number,
  policy: RestartPolicy,
): Promise<ReportOutcome> {
  const [[cell], onCell] = await db.batch([
    db.select({ state: cells.state, capacity: cells.capacity }).from(cells).where(eq(cells.guid, cellGuid)).limit(1),
    db.select(cellRowColumns).from(instances).where(eq(instances.cellGuid, cellGuid)),
    db.update(cells).set({
      lastHeartbeatAt: now,
      capacity: heartbeat.capacity,
      free: heartbeat.free,
      cachedLayers: heartbeat.cached_layers,
      // A LOST cell that heartbeats again is back; a DRAINING one keeps draining.
      state: sql`case when ${cells.state} = 'LOST' then 'ACTIVE' else ${cells.state} end`,
    }).where(eq(cells.guid, cellGuid)),
  ]);
  if (!cell) throw new Error(`cell ${cellGuid} vanished while heartbeating`);
  const rows = new Map(onCell.map((r) => [r.instanceGuid, r]));
  const { statements, outcome } = decisionsToStatements(db, actor, cellGuid, rows, heartbeat.instances, now, policy);
  const listed = new Set(heartbeat.instances.map((r) => r.instance_guid));
  const gone = onCell.filter((r) => r.state === "STOPPING" && !listed.has(r.instanceGuid)).map((r) => r.instanceGuid);
  for (const part of paramChunks(gone)) statements.push(db.delete(instances).where(inArray(instances.instanceGuid, part)));
  if (statements.length > 0) await db.batch(statements as [Statement, ...Statement[]]);
  const resized = JSON.stringify(cell.capacity) !== JSON.stringify(heartbeat.capacity);
  // Room freed, a cell back or resized: convergence looks at the cell (and what runs there).
  if (gone.length === 0 && cell.state !== "LOST" && !resized) return outcome;
  return { ...outcome, wake: { apps: outcome.wake?.apps ?? [], cells: [cellGuid] } };
}
