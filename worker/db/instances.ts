/** @module Actual LRPs as the stats endpoint reads them (the scheduler writes them). */
import { asc, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../env";
import { paramChunks } from "./param-chunks";
import { cells, instances } from "./schema";
import type { ActualState } from "../../shared/convergence/model";

export interface ActualInstance {
  instanceGuid: string;
  index: number;
  processVersion: string;
  state: ActualState;
  /** Milliseconds since the epoch of the last state change. */
  since: number;
  cellAddress: string | null;
  hostPort: number | null;
  /** The container port the app listens on, from the instance's spec snapshot. */
  containerPort: number | null;
  memoryMb: number | null;
  diskMb: number | null;
  crashReason: string | null;
  placementError: string | null;
  /** From its cell's last heartbeat that listed it, sent at `usageAt`. */
  usage: Record<string, number> | null;
  usageAt: number | null;
}

/** The instance's own entry in its cell's usage map (instance guids are UUIDs: nothing to quote in the path). */
const usageEntry = sql<string | null>`json_extract(${cells.instanceUsage}, '$."' || ${instances.instanceGuid} || '"')`;

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

export async function listInstancesOfProcess(db: Db, processGuid: string): Promise<ActualInstance[]> {
  return (await listInstancesOfProcesses(db, [processGuid])).get(processGuid) ?? [];
}

/** The instances of each process (by guid), in index order: one query per 90 processes. */
export async function listInstancesOfProcesses(db: Db, processGuids: readonly string[]): Promise<Map<string, ActualInstance[]>> {
  const out = new Map<string, ActualInstance[]>();
  for (const chunk of paramChunks(processGuids)) {
    const rows = await db
      .select({ i: instances, address: cells.address, usage: usageEntry, usageAt: cells.usageReportedAt })
      .from(instances)
      .leftJoin(cells, eq(cells.guid, instances.cellGuid))
      .where(inArray(instances.processGuid, chunk))
      .orderBy(asc(instances.index), asc(instances.since));
    for (const { i, address, usage, usageAt } of rows) {
      const used = usage === null ? null : (JSON.parse(usage) as Record<string, number>);
      const list = out.get(i.processGuid) ?? [];
      list.push({
        instanceGuid: i.instanceGuid,
        index: i.index,
        processVersion: i.processVersion,
        state: i.state,
        since: i.since,
        cellAddress: address,
        hostPort: i.hostPort,
        containerPort: num(i.spec.port),
        memoryMb: num(i.spec.memory_mb),
        diskMb: num(i.spec.disk_mb),
        crashReason: i.crashReason,
        placementError: i.placementError,
        usage: used,
        usageAt: used ? usageAt : null,
      });
      out.set(i.processGuid, list);
    }
  }
  return out;
}
