/**
 * @module Applying what cells report (heartbeats and state changes) to D1: one
 * batch per message, so a report either lands whole or not at all. Decisions
 * are `decideReport`'s; this module loads rows and turns decisions into writes.
 */
import { and, eq, inArray, sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "../env";
import type { RestartPolicy } from "../../shared/convergence/config";
import type { Heartbeat } from "../../shared/protocol/heartbeat";
import type { InstanceReport } from "../../shared/protocol/instance";
import { apps, cells, deployments, instances, processes } from "../db/schema";
import type { ApiLineEvent } from "../logs/api-lines";
import { auditEvent, type AuditEventInput } from "../db/audit";
import { versionBumps, type MovedSource, type VersionBumps } from "./versions";
import type { WakeScope } from "./wake-scope";
import { decideReport, type InstanceRow } from "./report-decision";
import { paramChunks } from "../db/param-chunks";
import { qualified } from "../db/qualified";
import { credentialHolds, credentialMatches, type CellCredential } from "./cells-repo";

export interface ReportOutcome {
  /** Reports refused: the instance is not (or no longer) placed on this cell. */
  rejected: { instance_guid: string; reason: string }[];
  /** What convergence should look at (a crash, a replacement now RUNNING, a cell back or resized); absent when nothing. */
  wake?: WakeScope;
  /** Long-poll sources whose versions the report moved (routes, the cell's own set when a crashed instance left it). */
  sources: MovedSource[];
  /** Crashes recorded, for their apps' API lines. */
  appEvents?: ApiLineEvent[];
  /** A heartbeat's: the cell's next beat should list its instances (heartbeatAnswerSchema). */
  listInstances?: boolean;
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
 * InstanceRow.awaited: another row of the same index, or an ACTIVE deployment of its app, the ones a pass steps
 * (deployments/facts.ts). The outer row's columns are spelled with their table (db/qualified.ts).
 */
const awaited = sql<number>`(exists (select 1 from ${instances} as twin where twin.process_guid = ${qualified(instances.processGuid)} and twin."index" = ${qualified(instances.index)} and twin.instance_guid <> ${qualified(instances.instanceGuid)})
  or exists (select 1 from ${deployments} where ${deployments.appGuid} = ${qualified(instances.appGuid)} and ${deployments.statusValue} = 'ACTIVE'))`.mapWith(Boolean);

/**
 * An instance's row as the decisions need it. Read in batches, where drizzle maps rows by column name, so no join: the app's name
 * and space and the process's type come by subquery, and computed columns are named (one called "1", as the heartbeat's `awaited`
 * would be, sorts first among the row's keys and shifts every field).
 */
const rowColumns = {
  instanceGuid: instances.instanceGuid, cellGuid: instances.cellGuid, state: instances.state, presence: instances.presence,
  since: instances.since, crashCount: instances.crashCount, hostPort: instances.hostPort, appGuid: instances.appGuid,
  index: instances.index, processGuid: instances.processGuid, processVersion: instances.processVersion, awaited: awaited.as("awaited"),
  appName: sql<string | null>`(select ${apps.name} from ${apps} where ${apps.guid} = ${qualified(instances.appGuid)})`,
  spaceGuid: sql<string | null>`(select ${apps.spaceGuid} from ${apps} where ${apps.guid} = ${qualified(instances.appGuid)})`,
  processType: sql<string | null>`(select ${processes.type} from ${processes} where ${processes.guid} = ${qualified(instances.processGuid)})`,
};

/**
 * A heartbeat reads every instance of its cell and seldom carries a change (the report came first), so it does not ask whether a pass
 * awaits one: a RUNNING it carries wakes one, as any did before.
 */
const cellRowColumns = { ...rowColumns, awaited: sql<number>`1`.mapWith(Boolean).as("awaited") };

/** The cell's name (for audit events) while `credential` is its own, and the reported instances' rows: one batch. */
async function loadRows(db: Db, credential: CellCredential, guids: string[]): Promise<{ cellName: string; rows: Map<string, LoadedRow> } | null> {
  const holds = credentialHolds(db, credential);
  const reads = paramChunks([...new Set(guids)]).map((part) => db.select(rowColumns).from(instances).where(and(inArray(instances.instanceGuid, part), holds)));
  const [cell, ...found] = await db.batch([db.select({ name: cells.name }).from(cells).where(credentialMatches(credential)).limit(1), ...reads]);
  if (!cell[0]) return null;
  return { cellName: cell[0].name, rows: new Map(found.flat().map((r) => [r.instanceGuid, r])) };
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
): { statements: Statement[]; bumps: VersionBumps; outcome: ReportOutcome } {
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
    statements.push(db.update(instances).set(d.change).where(byGuid));
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
  const outcome: ReportOutcome = {
    rejected, sources: bumps.sources, ...(wakeApps.size > 0 ? { wake: { apps: [...wakeApps] } } : {}), ...(appEvents.length > 0 ? { appEvents } : {}),
  };
  return { statements, bumps, outcome };
}

/** Commits a report's writes with its version bumps last, in one batch; its sources then carry the versions they moved to. */
async function commitReport(db: Db, statements: Statement[], bumps: VersionBumps, outcome: ReportOutcome): Promise<ReportOutcome> {
  const all = [...statements, ...bumps.statements];
  if (all.length === 0) return outcome;
  const results = await db.batch(all as [Statement, ...Statement[]]);
  return { ...outcome, sources: bumps.movedIn(results.slice(statements.length)) };
}

/** The actor of what a cell's reports record (crashes). */
const cellActor = (guid: string, name: string): AuditEventInput["actor"] => ({ guid, type: "cell", name });

/**
 * `POST /v3/cells/:id/instances`: all reports land, or (any rejected) none.
 * Null, with nothing written, when `credential` is not (or no longer) the cell's own.
 */
export async function recordInstanceReports(
  db: Db,
  credential: CellCredential,
  reports: InstanceReport[],
  now: number,
  policy: RestartPolicy,
): Promise<ReportOutcome | null> {
  const loaded = await loadRows(db, credential, reports.map((r) => r.instance_guid));
  if (!loaded) return null;
  const cellGuid = credential.guid;
  const { statements, bumps, outcome } = decisionsToStatements(db, cellActor(cellGuid, loaded.cellName), cellGuid, loaded.rows, reports, now, policy);
  return outcome.rejected.length === 0 ? commitReport(db, statements, bumps, outcome) : outcome;
}

/**
 * `POST /v3/cells/:id/heartbeat`: renews the cell's presence and resources.
 * A beat that lists the cell's instances also keeps their usage on the cell's
 * row (in the same statement), applies every report in it
 * (reports for instances no longer on the cell are skipped: the desired set
 * tells the cell to drop them) and forgets STOPPING instances the cell no
 * longer lists (it has stopped them).
 *
 * Presence first, in one round trip that also checks the credential and, for
 * a listing beat, reads the cell's own rows (never the fleet's): a live cell
 * stays alive whatever else is slow. A beat without a list, what a steady cell
 * sends most, reads no instance but whether one of the cell's is STOPPING
 * (then, or when the cell was LOST, it asks the next beat for the list);
 * reports that change rows take a second round trip, with their audit events
 * and version bumps.
 * Null, with nothing written, when `credential` is not (or no longer) the cell's own.
 */
export async function recordHeartbeat(
  db: Db,
  credential: CellCredential,
  heartbeat: Heartbeat,
  now: number,
  policy: RestartPolicy,
): Promise<ReportOutcome | null> {
  const cellGuid = credential.guid;
  const cellRead = db.select({ name: cells.name, state: cells.state, capacity: cells.capacity }).from(cells).where(credentialMatches(credential)).limit(1);
  const listed = heartbeat.instances;
  const renew = db.update(cells).set({
    lastHeartbeatAt: now,
    capacity: heartbeat.capacity,
    free: heartbeat.free,
    cachedLayers: heartbeat.cached_layers,
    // A LOST cell that heartbeats again is back; a DRAINING one keeps draining.
    state: sql`case when ${cells.state} = 'LOST' then 'ACTIVE' else ${cells.state} end`,
    // The list's usage on the cell's own row: one row written, however many instances it names.
    ...(listed ? { instanceUsage: ownUsage(listed), usageReportedAt: now } : {}),
  }).where(credentialMatches(credential));
  if (listed === undefined) {
    const [[cell], stopping] = await db.batch([
      cellRead,
      // Instances the cell was told to stop: only a list can say they are gone.
      db.select({ guid: instances.instanceGuid }).from(instances)
        .where(and(eq(instances.cellGuid, cellGuid), eq(instances.state, "STOPPING"), credentialHolds(db, credential))).limit(1),
      renew,
    ]);
    if (!cell) return null;
    const listNext = stopping.length > 0 || cell.state === "LOST";
    return withCellWake({ rejected: [], sources: [], ...(listNext ? { listInstances: true } : {}) }, cell, heartbeat, cellGuid, false);
  }
  const [[cell], onCell] = await db.batch([
    cellRead,
    db.select(cellRowColumns).from(instances).where(and(eq(instances.cellGuid, cellGuid), credentialHolds(db, credential))),
    renew,
  ]);
  if (!cell) return null;
  const rows = new Map(onCell.map((r) => [r.instanceGuid, r]));
  const decided = decisionsToStatements(db, cellActor(cellGuid, cell.name), cellGuid, rows, listed, now, policy);
  const named = new Set(listed.map((r) => r.instance_guid));
  const gone = onCell.filter((r) => r.state === "STOPPING" && !named.has(r.instanceGuid)).map((r) => r.instanceGuid);
  for (const part of paramChunks(gone)) decided.statements.push(db.delete(instances).where(inArray(instances.instanceGuid, part)));
  const outcome = await commitReport(db, decided.statements, decided.bumps, decided.outcome);
  return withCellWake(outcome, cell, heartbeat, cellGuid, gone.length > 0);
}

/**
 * The listed usage by instance guid, kept for the cell's own instances only (the outer statement's cell row):
 * a cell listing made-up guids grows nothing.
 */
function ownUsage(listed: InstanceReport[]): SQL {
  const sent = JSON.stringify(Object.fromEntries(listed.flatMap((r) => (r.usage ? [[r.instance_guid, r.usage]] : []))));
  return sql`(select json_group_object(u.key, json(u.value)) from json_each(${sent}) as u
    where exists (select 1 from ${instances} where ${instances.instanceGuid} = u.key and ${instances.cellGuid} = ${qualified(cells.guid)}))`;
}

/** Room freed, a cell back or resized: convergence looks at the cell (and what runs there). */
function withCellWake(
  outcome: ReportOutcome,
  cell: { state: string; capacity: unknown },
  heartbeat: Heartbeat,
  cellGuid: string,
  freed: boolean,
): ReportOutcome {
  const resized = JSON.stringify(cell.capacity) !== JSON.stringify(heartbeat.capacity);
  if (!freed && cell.state !== "LOST" && !resized) return outcome;
  return { ...outcome, wake: { apps: outcome.wake?.apps ?? [], cells: [cellGuid] } };
}
