/**
 * @module The versions long-polls wait on. A cell's desired-set version is its
 * `desired_version` plus the registry access version: both only grow, so the
 * sum moves whenever either does (a registry access edit changes every cell's
 * set without touching every cell row). Routers wait on the `routes_table` counter.
 */
import { eq } from "drizzle-orm";
import type { Db } from "../env";
import { ROUTES_TABLE_COUNTER, readCounter } from "../db/counters";
import { cells, registryAccess } from "../db/schema";

/** What a channel watches: one cell's desired set, or the route table. */
export type VersionSource = { kind: "cell"; cellGuid: string } | { kind: "routes_table" };

export function sourceName(source: VersionSource): string {
  return source.kind === "cell" ? `cell:${source.cellGuid}` : "routes_table";
}

export function parseSourceName(name: string): VersionSource | undefined {
  if (name === "routes_table") return { kind: "routes_table" };
  const m = /^cell:(.+)$/.exec(name);
  return m ? { kind: "cell", cellGuid: m[1]! } : undefined;
}

export function registryAccessVersionQuery(db: Db) {
  return db.select({ version: registryAccess.version }).from(registryAccess).where(eq(registryAccess.id, 1)).limit(1);
}

export function cellVersionQuery(db: Db, cellGuid: string) {
  return db.select({ version: cells.desiredVersion }).from(cells).where(eq(cells.guid, cellGuid)).limit(1);
}

/** The cell's desired-set version, or undefined for an unknown cell. */
export async function readCellSetVersion(db: Db, cellGuid: string): Promise<number | undefined> {
  const [cell, access] = await db.batch([cellVersionQuery(db, cellGuid), registryAccessVersionQuery(db)]);
  if (!cell[0]) return undefined;
  return cell[0].version + (access[0]?.version ?? 0);
}

export async function readVersion(db: Db, source: VersionSource): Promise<number | undefined> {
  return source.kind === "cell" ? readCellSetVersion(db, source.cellGuid) : readCounter(db, ROUTES_TABLE_COUNTER);
}
