/** @module Actual LRPs as the stats endpoint reads them (the scheduler writes them). */
import { asc, eq } from "drizzle-orm";
import type { Db } from "../env";
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
  usage: Record<string, number> | null;
  lastReportAt: number | null;
}

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

export async function listInstancesOfProcess(db: Db, processGuid: string): Promise<ActualInstance[]> {
  const rows = await db
    .select({ i: instances, address: cells.address })
    .from(instances)
    .leftJoin(cells, eq(cells.guid, instances.cellGuid))
    .where(eq(instances.processGuid, processGuid))
    .orderBy(asc(instances.index), asc(instances.since));
  return rows.map(({ i, address }) => ({
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
    usage: i.usage,
    lastReportAt: i.lastReportAt,
  }));
}
