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
import { cells, counters, registryAccess } from "../db/schema";
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

/**
 * A source a write moved, with the version the write moved it to when its batch read that back: the source's
 * channel then tells its watchers without reading D1 again (absent: the channel reads it).
 */
export type MovedSource = VersionSource & { readonly version?: number };

export interface VersionBumps {
  /** For the end of the write's batch: the bumps, each reading back what it made (and the registry access version, for cells' sets). */
  readonly statements: BatchItem<"sqlite">[];
  readonly sources: VersionSource[];
  /** The sources with their new versions, from the results of `statements` (the batch's last results). */
  movedIn(results: readonly unknown[]): MovedSource[];
}

/** The statements moving the versions of what a write touched, and the sources whose channels must hear of it. */
export function versionBumps(db: Db, touched: Touched): VersionBumps {
  const guids = [...new Set([...(touched.cells ?? [])].filter((g): g is string => g !== null))];
  const parts = paramChunks(guids);
  const statements: BatchItem<"sqlite">[] = [];
  const sources: VersionSource[] = guids.map((cellGuid) => ({ kind: "cell", cellGuid }));
  if (guids.length > 0) {
    statements.push(registryAccessVersionQuery(db));
    for (const part of parts) {
      statements.push(bumpCellSetsWhere(db, inArray(cells.guid, part)).returning({ guid: cells.guid, version: cells.desiredVersion }));
    }
  }
  if (touched.routes) {
    statements.push(bumpRouteTable(db).returning({ version: counters.value }));
    sources.push({ kind: "routes_table" });
  }
  const movedIn = (results: readonly unknown[]): MovedSource[] => {
    const rows = results as { guid?: string; version: number }[][];
    const made = new Map<string, number>();
    if (guids.length > 0) {
      const registry = rows[0]?.[0]?.version ?? 0;
      for (const row of rows.slice(1, 1 + parts.length).flat()) made.set(row.guid!, cellSetVersion(row.version, registry));
    }
    const routesVersion = touched.routes ? rows.at(-1)?.[0]?.version : undefined;
    return sources.map((s) => {
      const version = s.kind === "cell" ? made.get(s.cellGuid) : routesVersion;
      return version === undefined ? s : { ...s, version };
    });
  };
  return { statements, sources, movedIn };
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
