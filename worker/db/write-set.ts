/**
 * @module The scheduler's write-set (worker/scheduling/write-set.ts) as D1
 * statements. Stops and forgets of one moment go as one statement per chunk
 * of instances (a flag flipped off stops every instance in one pass: 10,000
 * writes, about 112 statements); every other write is a statement of its own.
 * Statements go in batches of at most BATCH_LIMIT; each batch carries the
 * version bumps for the cells and routes its writes touched, so even a pass
 * cut half-way leaves no change a long-poll could miss.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "../env";
import { builds, cells, deployments, instances, processes } from "./schema";
import { isoNow } from "../http/ids";
import type { DeploymentGuard } from "../deployments/updater";
import { auditEvent } from "./audit";
import { paramChunks } from "./param-chunks";
import { storedSpecSchema, type StoredSpec } from "../scheduling/stored-spec";
import { sourceName, versionBumps, type MovedSource } from "../scheduling/versions";
import type { WriteOp } from "../scheduling/write-set";

type Statement = BatchItem<"sqlite">;

/** Statements per D1 batch (D1 caps queries per invocation; each batch stays one transaction). */
export const BATCH_LIMIT = 400;

/** Stored specs of these instances; one that does not parse (kept `{}` after a spec error) is left out. */
export async function loadSpecs(db: Db, guids: string[]): Promise<Map<string, StoredSpec>> {
  const out = new Map<string, StoredSpec>();
  for (const part of paramChunks(guids)) {
    const rows = await db.select({ guid: instances.instanceGuid, spec: instances.spec }).from(instances).where(inArray(instances.instanceGuid, part));
    for (const r of rows) {
      const parsed = storedSpecSchema.safeParse(r.spec);
      if (parsed.success) out.set(r.guid, parsed.data);
    }
  }
  return out;
}

/** The deployment is still in the state its step was decided from. */
const stillAsRead = (g: DeploymentGuard) =>
  sql`exists (select 1 from ${deployments} where ${deployments.guid} = ${g.deployment_guid} and ${deployments.state} = ${g.state})`;

/** Writes that become one statement: a write of its own, or stops (of one moment) or forgets of up to a chunk of instances. */
export type WriteGroup = (
  | { kind: "one"; write: WriteOp }
  | { kind: "stopping"; since: number; instance_guids: string[] }
  | { kind: "forget"; instance_guids: string[] }
) & { cells: string[]; routes: boolean };

/**
 * The write-set as statements to be, pure: stops with the same `since`, and
 * forgets, gathered into chunks of paramChunks' size; every other write alone,
 * in its order, first: a deployment's writes (a process removed with its
 * instances, by cascade) keep their place ahead of the pass's stops, as the
 * pass made them. Gathered writes touch distinct instances (a pass stops,
 * forgets or replaces an instance once), so their own order is free.
 */
type Gathered = Extract<WriteOp, { op: "stopping" | "forget" }>;

export function groupWrites(writes: readonly WriteOp[]): WriteGroup[] {
  const stopping = new Map<number, Gathered[]>();
  const forget: Gathered[] = [];
  const ones: WriteGroup[] = [];
  for (const w of writes) {
    if (w.op === "stopping") {
      const same = stopping.get(w.since);
      if (same) same.push(w);
      else stopping.set(w.since, [w]);
    } else if (w.op === "forget") forget.push(w);
    else ones.push({ kind: "one", write: w, cells: w.cells ?? [], routes: w.routes === true });
  }
  const touched = (ws: Gathered[]) => ({ cells: [...new Set(ws.flatMap((w) => w.cells ?? []))], routes: ws.some((w) => w.routes === true) });
  const guids = (ws: Gathered[]) => ws.map((w) => w.instance_guid);
  return [
    ...ones,
    ...[...stopping].flatMap(([since, ws]) => paramChunks(ws).map((part): WriteGroup => ({ kind: "stopping", since, instance_guids: guids(part), ...touched(part) }))),
    ...paramChunks(forget).map((part): WriteGroup => ({ kind: "forget", instance_guids: guids(part), ...touched(part) })),
  ];
}

function groupStatement(db: Db, g: WriteGroup): Statement {
  switch (g.kind) {
    case "stopping":
      return db.update(instances).set({ state: "STOPPING", since: g.since }).where(inArray(instances.instanceGuid, g.instance_guids));
    case "forget":
      return db.delete(instances).where(inArray(instances.instanceGuid, g.instance_guids));
    case "one":
      return statementOf(db, g.write);
  }
}

function statementOf(db: Db, w: WriteOp): Statement {
  const byGuid = (guid: string) => eq(instances.instanceGuid, guid);
  switch (w.op) {
    case "mark_lost":
      return db.update(cells).set({ state: "LOST" })
        .where(sql`${cells.guid} = ${w.cell_guid} and ${cells.state} = 'ACTIVE' and ${cells.lastHeartbeatAt} is ${w.last_heartbeat_at}`);
    case "stopping":
      return db.update(instances).set({ state: "STOPPING", since: w.since }).where(byGuid(w.instance_guid));
    case "forget":
      return db.delete(instances).where(byGuid(w.instance_guid));
    case "presence":
      return db.update(instances).set({ presence: w.presence }).where(byGuid(w.instance_guid));
    case "claim":
      return db.update(instances)
        .set({ cellGuid: w.cell_guid, state: "CLAIMED", since: w.since, placementError: null, ...(w.spec ? { spec: w.spec } : {}) })
        .where(byGuid(w.instance_guid));
    case "placement_error":
      return db.update(instances).set({ placementError: w.error }).where(byGuid(w.instance_guid));
    case "insert":
      return db.insert(instances).values(w.row);
    case "assign_staging":
      return db.update(builds).set({ stagingCellGuid: w.cell_guid }).where(eq(builds.guid, w.build_guid));
    case "audit":
      return auditEvent(db, w.event);
    case "process_instances":
      return db.update(processes).set({ instances: w.instances, updatedAt: isoNow() }).where(and(eq(processes.guid, w.process_guid), stillAsRead(w.guard)));
    case "process_remove":
      // Its instances go with it (foreign key cascade); the pass's stop writes for them move the cells' and routers' versions.
      return db.delete(processes).where(and(eq(processes.guid, w.process_guid), stillAsRead(w.guard)));
    case "deployment": {
      const { lastHealthyAt, ...status } = w.set;
      const ts = isoNow();
      return db.update(deployments).set({
        ...status, updatedAt: ts,
        ...(status.statusReason ? { statusUpdatedAt: ts } : {}),
        ...(lastHealthyAt !== undefined ? { lastHealthyAt: isoNow(new Date(lastHealthyAt)) } : {}),
      }).where(and(eq(deployments.guid, w.guard.deployment_guid), eq(deployments.state, w.guard.state)));
    }
  }
}

/** Commits the write-set; answers the long-poll sources whose versions moved, with the versions they moved to. */
export async function commitWriteSet(db: Db, writes: WriteOp[]): Promise<MovedSource[]> {
  const moved = new Map<string, MovedSource>();
  const groups = groupWrites(writes);
  for (let start = 0; start < groups.length; start += BATCH_LIMIT) {
    const slice = groups.slice(start, start + BATCH_LIMIT);
    const bumps = versionBumps(db, { cells: slice.flatMap((g) => g.cells), routes: slice.some((g) => g.routes) });
    const statements = [...slice.map((g) => groupStatement(db, g)), ...bumps.statements];
    const results = await db.batch(statements as [Statement, ...Statement[]]);
    // A later batch's version of the same source is the newer one.
    for (const s of bumps.movedIn(results.slice(slice.length))) moved.set(sourceName(s), s);
  }
  return [...moved.values()];
}
