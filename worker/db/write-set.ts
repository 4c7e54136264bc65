/**
 * @module The scheduler's write-set (worker/scheduling/write-set.ts) as D1
 * statements. Writes go in batches of at most BATCH_LIMIT statements; each
 * batch carries the version bumps for the cells and routes its writes touched,
 * so even a pass cut half-way leaves no change a long-poll could miss.
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
import { versionBumps, type VersionSource } from "../scheduling/versions";
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

/** Commits the write-set; answers the long-poll sources whose versions moved. */
export async function commitWriteSet(db: Db, writes: WriteOp[]): Promise<VersionSource[]> {
  const moved = new Map<string, VersionSource>();
  for (let start = 0; start < writes.length; start += BATCH_LIMIT) {
    const slice = writes.slice(start, start + BATCH_LIMIT);
    const bumps = versionBumps(db, { cells: slice.flatMap((w) => w.cells ?? []), routes: slice.some((w) => w.routes) });
    const statements = [...slice.map((w) => statementOf(db, w)), ...bumps.statements];
    await db.batch(statements as [Statement, ...Statement[]]);
    for (const s of bumps.sources) moved.set(s.kind === "cell" ? s.cellGuid : s.kind, s);
  }
  return [...moved.values()];
}
