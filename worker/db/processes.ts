/**
 * @module Processes in D1. The desired settings live here; what runs is the
 * snapshot taken at start/restart/scale-up, so edits change nothing running
 * until a restart gives the process a new `version`.
 */
import { and, asc, count, desc, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../env";
import { isoNow, newGuid } from "../http/ids";
import { type AuditEventInput, auditEventIfChanged } from "./audit";
import { apps, droplets, processes } from "./schema";
import type { Listing } from "./listing";
import { visibleTo } from "./roles";

export type HealthCheckType = "port" | "process" | "http";

export interface HealthCheck {
  type: HealthCheckType;
  timeout: number | null;
  invocationTimeout: number | null;
  interval: number | null;
  endpoint: string | null;
}

export interface Process {
  guid: string;
  appGuid: string;
  spaceGuid: string;
  appName: string;
  appState: "STARTED" | "STOPPED";
  type: string;
  version: string;
  /** The user-set command (null when unset). */
  command: string | null;
  /** The current droplet's start command for this type (CF's detected command). */
  detectedCommand: string | null;
  user: string | null;
  instances: number;
  memoryInMb: number;
  diskInMb: number;
  logRateLimitInBytesPerSecond: number;
  healthCheck: HealthCheck;
  createdAt: string;
  updatedAt: string;
}

/** CC's defaults (capi-release cc.default_app_memory, default_app_disk_in_mb). */
export const DEFAULT_MEMORY_MB = 1024;
export const DEFAULT_DISK_MB = 1024;

/**
 * The `web` process of a new app: same guid as the app, 1 instance, port health
 * check (CF's AppCreate). Inserted only if the app row exists, so it pairs with
 * an app insert that may be a no-op in the same batch.
 */
export function webProcessInsert(db: Db, appGuid: string, now: Date) {
  const ts = isoNow(now);
  // insert…select names every column in schema order (drizzle's insert-select form).
  return db.insert(processes).select(sql`select ${appGuid}, ${appGuid}, 'web', ${newGuid()}, null, null, 1, ${DEFAULT_MEMORY_MB}, ${DEFAULT_DISK_MB}, -1,
    'port', null, null, null, null, ${ts}, ${ts}
    where exists (select 1 from ${apps} where ${apps.guid} = ${appGuid})`);
}

const columns = {
  p: processes,
  spaceGuid: apps.spaceGuid,
  appName: apps.name,
  appState: apps.state,
  // The droplet's process_types is a JSON object keyed by process type.
  detected: sql<string | null>`json_extract(${droplets.processTypes}, '$."' || ${processes.type} || '"')`,
};

type Row = { p: typeof processes.$inferSelect; spaceGuid: string; appName: string; appState: "STARTED" | "STOPPED"; detected: string | null };

function toProcess(r: Row): Process {
  const p = r.p;
  return {
    guid: p.guid,
    appGuid: p.appGuid,
    spaceGuid: r.spaceGuid,
    appName: r.appName,
    appState: r.appState,
    type: p.type,
    version: p.version,
    command: p.command,
    detectedCommand: r.detected,
    user: p.user,
    instances: p.instances,
    memoryInMb: p.memoryInMb,
    diskInMb: p.diskInMb,
    logRateLimitInBytesPerSecond: p.logRateLimitInBytesPerSecond,
    healthCheck: {
      type: p.healthCheckType,
      timeout: p.healthCheckTimeout,
      invocationTimeout: p.healthCheckInvocationTimeout,
      interval: p.healthCheckInterval,
      endpoint: p.healthCheckEndpoint,
    },
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
  };
}

function selectProcesses(db: Db) {
  return db.select(columns).from(processes)
    .innerJoin(apps, eq(apps.guid, processes.appGuid))
    .leftJoin(droplets, eq(droplets.guid, apps.currentDropletGuid));
}

export async function getProcess(db: Db, guid: string): Promise<Process | undefined> {
  const [row] = await selectProcesses(db).where(eq(processes.guid, guid)).limit(1);
  return row && toProcess(row);
}

/** The app's newest process of the type: during a rolling deployment, the deploying web process (CC's ProcessFetcher). */
export async function getProcessByType(db: Db, appGuid: string, type: string): Promise<Process | undefined> {
  const [row] = await selectProcesses(db).where(and(eq(processes.appGuid, appGuid), eq(processes.type, type)))
    .orderBy(desc(processes.createdAt), sql`${processes}.rowid desc`).limit(1);
  return row && toProcess(row);
}

export interface ProcessFilter extends Listing {
  appGuids?: string[];
  types?: string[];
  spaceGuids?: string[];
  guids?: string[];
}

export async function listProcesses(db: Db, f: ProcessFilter): Promise<{ total: number; processes: Process[] }> {
  const cond = and(
    f.appGuids && inArray(processes.appGuid, f.appGuids),
    f.types && inArray(processes.type, f.types),
    f.spaceGuids && inArray(apps.spaceGuid, f.spaceGuids),
    f.guids && inArray(processes.guid, f.guids),
    visibleTo(db, f.viewer, apps.spaceGuid),
  );
  const [totals, rows] = await db.batch([
    db.select({ n: count() }).from(processes).innerJoin(apps, eq(apps.guid, processes.appGuid)).where(cond),
    selectProcesses(db).where(cond).orderBy(asc(processes.createdAt), sql`${processes}.rowid`)
      .limit(f.perPage).offset((f.page - 1) * f.perPage),
  ]);
  return { total: totals[0]?.n ?? 0, processes: rows.map(toProcess) };
}

export interface ProcessChange {
  /** null resets to the detected command. */
  command?: string | null;
  user?: string | null;
  healthCheck?: HealthCheck;
}

/** Desired-state edits (no effect on running instances until a restart). */
export function updateProcess(db: Db, proc: Process, change: ProcessChange, request: Record<string, unknown>, actor: AuditEventInput["actor"], now: Date = new Date()) {
  const set: ProcessSet = {};
  if (change.command !== undefined) set.command = change.command;
  if (change.user !== undefined) set.user = change.user;
  if (change.healthCheck) {
    set.healthCheckType = change.healthCheck.type;
    set.healthCheckTimeout = change.healthCheck.timeout;
    set.healthCheckInvocationTimeout = change.healthCheck.invocationTimeout;
    set.healthCheckInterval = change.healthCheck.interval;
    set.healthCheckEndpoint = change.healthCheck.endpoint;
  }
  return writeProcess(db, proc, set, "audit.app.process.update", request, actor, now);
}

export interface Scale {
  instances?: number;
  memoryInMb?: number;
  diskInMb?: number;
  logRateLimitInBytesPerSecond?: number;
}

export function scaleProcess(db: Db, proc: Process, scale: Scale, request: Record<string, unknown>, actor: AuditEventInput["actor"], now: Date = new Date()) {
  const set: ProcessSet = {};
  if (scale.instances !== undefined) set.instances = scale.instances;
  if (scale.memoryInMb !== undefined) set.memoryInMb = scale.memoryInMb;
  if (scale.diskInMb !== undefined) set.diskInMb = scale.diskInMb;
  if (scale.logRateLimitInBytesPerSecond !== undefined) set.logRateLimitInBytesPerSecond = scale.logRateLimitInBytesPerSecond;
  return writeProcess(db, proc, set, "audit.app.process.scale", request, actor, now);
}

type ProcessSet = Partial<typeof processes.$inferInsert>;

/** One update of the process and its audit event (CC targets the app), in one batch. */
async function writeProcess(
  db: Db, proc: Process, set: ProcessSet, type: "audit.app.process.update" | "audit.app.process.scale",
  request: Record<string, unknown>, actor: AuditEventInput["actor"], now: Date,
): Promise<Process | undefined> {
  await db.batch([
    db.update(processes).set({ ...set, updatedAt: isoNow(now) }).where(eq(processes.guid, proc.guid)),
    auditEventIfChanged(db, {
      type, actor, target: { guid: proc.appGuid, type: "app", name: proc.appName },
      spaceGuid: proc.spaceGuid, data: { process_guid: proc.guid, process_type: proc.type, request }, now,
    }),
  ]);
  return getProcess(db, proc.guid);
}
