/**
 * @module The versions long-polls wait on. A cell's desired-set version is its
 * `desired_version` plus the registry access version: both only grow, so the
 * sum moves whenever either does (a registry access edit changes every cell's
 * set without touching every cell row). Routers wait on the `routes_table` counter.
 */
import { eq, inArray, sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "../env";
import { ROUTES_TABLE_COUNTER, bumpRouteTable, readCounter } from "../db/counters";
import { paramChunks } from "../db/param-chunks";
import { cells, registryAccess } from "../db/schema";
import { credentialMatches, type CellCredential } from "./cells-repo";

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

/** The one formula of a cell's desired-set version. */
export const cellSetVersion = (desiredVersion: number, registryAccessVersion: number): number => desiredVersion + registryAccessVersion;

/** Moves the desired-set version of the cells `where` picks (the only `desired_version + 1`). */
export const bumpCellSetsWhere = (db: Db, where: SQL) => db.update(cells).set({ desiredVersion: sql`${cells.desiredVersion} + 1` }).where(where);

/** What a write changed, for the versions it must move in its own batch. */
export interface Touched {
  cells?: Iterable<string | null>;
  routes?: boolean;
}

/** The statements moving the versions of what a write touched, and the sources whose channels must hear of it. */
export function versionBumps(db: Db, touched: Touched): { statements: BatchItem<"sqlite">[]; sources: VersionSource[] } {
  const guids = [...new Set([...(touched.cells ?? [])].filter((g): g is string => g !== null))];
  const statements: BatchItem<"sqlite">[] = paramChunks(guids).map((part) => bumpCellSetsWhere(db, inArray(cells.guid, part)));
  const sources: VersionSource[] = guids.map((cellGuid) => ({ kind: "cell", cellGuid }));
  if (touched.routes) {
    statements.push(bumpRouteTable(db));
    sources.push({ kind: "routes_table" });
  }
  return { statements, sources };
}

/** Every cell's desired-set source (a registry access edit moves them all). */
export async function allCellSources(db: Db): Promise<VersionSource[]> {
  const rows = await db.select({ guid: cells.guid }).from(cells);
  return rows.map((c) => ({ kind: "cell", cellGuid: c.guid }));
}

export function registryAccessVersionQuery(db: Db) {
  return db.select({ version: registryAccess.version }).from(registryAccess).where(eq(registryAccess.id, 1)).limit(1);
}

/** The cell's desired_version; given a credential, only while it is still the cell's own (cells-repo.ts). */
export function cellVersionQuery(db: Db, cell: string | CellCredential) {
  return db.select({ version: cells.desiredVersion }).from(cells).where(typeof cell === "string" ? eq(cells.guid, cell) : credentialMatches(cell)).limit(1);
}

/** The cell's desired-set version, or undefined for an unknown cell. */
export async function readCellSetVersion(db: Db, cellGuid: string): Promise<number | undefined> {
  const [cell, access] = await db.batch([cellVersionQuery(db, cellGuid), registryAccessVersionQuery(db)]);
  if (!cell[0]) return undefined;
  return cellSetVersion(cell[0].version, access[0]?.version ?? 0);
}

export async function readVersion(db: Db, source: VersionSource): Promise<number | undefined> {
  return source.kind === "cell" ? readCellSetVersion(db, source.cellGuid) : readCounter(db, ROUTES_TABLE_COUNTER);
}
