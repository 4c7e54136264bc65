/**
 * @module Cells and enrollment in D1: one-time enrollment tokens, registration
 * (a cell or a router trades its token once for a credential), listing and
 * draining.
 */
import { and, asc, count, eq, exists, gt, isNull, sql } from "drizzle-orm";
import type { Db } from "../env";
import type { EnrollmentKind } from "../../shared/protocol/enrollment";
import type { Resources } from "../../shared/protocol/resources";
import type { CellState } from "../../shared/convergence/model";
import { builds, cells, enrollmentTokens, instances, routers } from "../db/schema";
import { hashToken, newToken } from "../auth/tokens";
import { bumpRouteTable } from "../db/counters";
import { isoNow, newGuid } from "../http/ids";

/** A cell's guid and the hash of the token it presented, to be matched in the same batch that uses them (auth/principal.ts's CellClaim). */
export interface CellCredential {
  readonly guid: string;
  readonly tokenHash: string;
}

/** The cell's row while `credential` is still its own: none for an unknown cell or a token not (or no longer) its. */
export const credentialMatches = (credential: CellCredential) => and(eq(cells.guid, credential.guid), eq(cells.tokenHash, credential.tokenHash));

/**
 * For the other reads of a batch that checks a credential: they find nothing unless it holds, so a stranger
 * presenting a made-up token for a real cell costs an indexed lookup per read, not the cell's rows.
 */
export const credentialHolds = (db: Db, credential: CellCredential) => exists(db.select({ one: sql`1` }).from(cells).where(credentialMatches(credential)));

/** Enrollment tokens live an hour unless the Worker var ENROLLMENT_TOKEN_TTL_MS says otherwise (kubeadm's bootstrap tokens: 24 h). */
export const DEFAULT_ENROLLMENT_TOKEN_TTL_MS = 60 * 60 * 1000;

export function enrollmentTokenTtlMs(env: { ENROLLMENT_TOKEN_TTL_MS?: string }): number {
  const v = Number(env.ENROLLMENT_TOKEN_TTL_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_ENROLLMENT_TOKEN_TTL_MS;
}

export interface EnrollmentTokenRecord {
  guid: string;
  kind: EnrollmentKind;
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
  revokedAt: string | null;
}

export type EnrollmentTokenState = "active" | "used" | "revoked" | "expired";

/** A token's state at `now`: spent, revoked and expired tokens enroll nothing. */
export function enrollmentTokenState(t: Pick<EnrollmentTokenRecord, "usedAt" | "revokedAt" | "expiresAt">, now: Date): EnrollmentTokenState {
  if (t.usedAt) return "used";
  if (t.revokedAt) return "revoked";
  return t.expiresAt <= isoNow(now) ? "expired" : "active";
}

export async function createEnrollmentToken(db: Db, kind: EnrollmentKind, now: Date, ttlMs: number): Promise<EnrollmentTokenRecord & { token: string }> {
  const token = newToken("enrollment");
  const row = { guid: newGuid(), kind, createdAt: isoNow(now), expiresAt: isoNow(new Date(now.getTime() + ttlMs)), usedAt: null, revokedAt: null };
  await db.insert(enrollmentTokens).values({ tokenHash: await hashToken(token), ...row });
  return { ...row, token };
}

/** Unspent, unrevoked and unexpired at `now`: the only tokens that enroll. */
const usable = (hash: string, now: Date) =>
  and(eq(enrollmentTokens.tokenHash, hash), isNull(enrollmentTokens.usedAt), isNull(enrollmentTokens.revokedAt), gt(enrollmentTokens.expiresAt, isoNow(now)));

/** The kind of a usable enrollment token, or undefined when it is unknown, spent, revoked or expired. */
export async function enrollmentKind(db: Db, token: string, now: Date): Promise<EnrollmentKind | undefined> {
  const [row] = await db.select({ kind: enrollmentTokens.kind }).from(enrollmentTokens).where(usable(await hashToken(token), now)).limit(1);
  return row?.kind;
}

/** Spends the token; false when another registration spent it first (or it expired or was revoked meanwhile). */
async function spend(db: Db, token: string, now: Date): Promise<boolean> {
  const res = await db.update(enrollmentTokens).set({ usedAt: isoNow(now) }).where(usable(await hashToken(token), now));
  return res.meta.changes === 1;
}

export async function listEnrollmentTokens(db: Db, page: number, perPage: number): Promise<{ total: number; tokens: EnrollmentTokenRecord[] }> {
  const columns = {
    guid: enrollmentTokens.guid, kind: enrollmentTokens.kind, createdAt: enrollmentTokens.createdAt,
    expiresAt: enrollmentTokens.expiresAt, usedAt: enrollmentTokens.usedAt, revokedAt: enrollmentTokens.revokedAt,
  };
  const [rows, [totalRow]] = await db.batch([
    db.select(columns).from(enrollmentTokens).orderBy(asc(enrollmentTokens.createdAt), asc(enrollmentTokens.guid)).limit(perPage).offset((page - 1) * perPage),
    db.select({ n: count() }).from(enrollmentTokens),
  ]);
  // The migration gave every older row a guid and an expiry.
  return { total: totalRow?.n ?? 0, tokens: rows.map((r) => ({ ...r, guid: r.guid!, expiresAt: r.expiresAt! })) };
}

/** Revokes an unspent token (again: no change); a spent one is left, its cell or router is what to delete. */
export async function revokeEnrollmentToken(db: Db, guid: string, now: Date): Promise<"revoked" | "used" | "not_found"> {
  await db.update(enrollmentTokens).set({ revokedAt: isoNow(now) })
    .where(and(eq(enrollmentTokens.guid, guid), isNull(enrollmentTokens.usedAt), isNull(enrollmentTokens.revokedAt)));
  const [row] = await db.select({ usedAt: enrollmentTokens.usedAt }).from(enrollmentTokens).where(eq(enrollmentTokens.guid, guid)).limit(1);
  return !row ? "not_found" : row.usedAt ? "used" : "revoked";
}

export interface RouterRecord { guid: string; name: string; createdAt: string; updatedAt: string }

export async function listRouters(db: Db, page: number, perPage: number): Promise<{ total: number; routers: RouterRecord[] }> {
  const [rows, [totalRow]] = await db.batch([
    db.select({ guid: routers.guid, name: routers.name, createdAt: routers.createdAt, updatedAt: routers.updatedAt })
      .from(routers).orderBy(asc(routers.createdAt), asc(routers.guid)).limit(perPage).offset((page - 1) * perPage),
    db.select({ n: count() }).from(routers),
  ]);
  return { total: totalRow?.n ?? 0, routers: rows };
}

/** Forgets a router: its credential stops working with the next request. False when there is no such router. */
export async function deleteRouter(db: Db, guid: string): Promise<boolean> {
  const res = await db.delete(routers).where(eq(routers.guid, guid));
  return res.meta.changes === 1;
}

export interface Registered {
  guid: string;
  name: string;
  credential: string;
}

export async function registerCell(
  db: Db,
  token: string,
  cell: { name: string; zone: string; address: string; capacity: Resources },
  now: Date,
): Promise<Registered | undefined> {
  if (!(await spend(db, token, now))) return undefined;
  const guid = newGuid();
  const credential = newToken("cell");
  await db.insert(cells).values({
    guid, name: cell.name, zone: cell.zone, address: cell.address, tokenHash: await hashToken(credential),
    capacity: cell.capacity, state: "ACTIVE", createdAt: isoNow(now), updatedAt: isoNow(now),
  });
  return { guid, name: cell.name, credential };
}

export async function registerRouter(db: Db, token: string, name: string, now: Date): Promise<Registered | undefined> {
  if (!(await spend(db, token, now))) return undefined;
  const guid = newGuid();
  const credential = newToken("router");
  await db.insert(routers).values({ guid, name, tokenHash: await hashToken(credential), createdAt: isoNow(now), updatedAt: isoNow(now) });
  return { guid, name, credential };
}

export interface CellRecord {
  guid: string;
  name: string;
  zone: string;
  address: string;
  state: CellState;
  capacity: Resources;
  free: Resources | null;
  lastHeartbeatAt: number | null;
  desiredVersion: number;
  instances: number;
  createdAt: string;
  updatedAt: string;
}

const cellColumns = {
  guid: cells.guid, name: cells.name, zone: cells.zone, address: cells.address, state: cells.state, capacity: cells.capacity,
  free: cells.free, lastHeartbeatAt: cells.lastHeartbeatAt, desiredVersion: cells.desiredVersion, createdAt: cells.createdAt,
  updatedAt: cells.updatedAt,
  instances: sql<number>`(select count(*) from ${instances} where ${instances.cellGuid} = ${cells.guid})`,
};

export async function listCells(db: Db, page: number, perPage: number): Promise<{ total: number; cells: CellRecord[] }> {
  const [totals, rows] = await db.batch([
    db.select({ n: count() }).from(cells),
    db.select(cellColumns).from(cells).orderBy(asc(cells.createdAt), sql`rowid`).limit(perPage).offset((page - 1) * perPage),
  ]);
  return { total: totals[0]?.n ?? 0, cells: rows };
}

export async function getCell(db: Db, guid: string): Promise<CellRecord | undefined> {
  const [row] = await db.select(cellColumns).from(cells).where(eq(cells.guid, guid)).limit(1);
  return row;
}

/** Marks the cell DRAINING (convergence evacuates it); false for an unknown cell. */
export async function drainCell(db: Db, guid: string, now: Date): Promise<boolean> {
  const res = await db.update(cells).set({ state: "DRAINING", updatedAt: isoNow(now) }).where(eq(cells.guid, guid));
  return res.meta.changes === 1;
}

/**
 * Forgets a cell that is gone (Kubernetes' `kubectl delete node`; Nomad GCs
 * down nodes): its row and credential — an agent coming back must enroll
 * again — and the instances still recorded on it (replaced already, or
 * SUSPECT copies whose routes go with them). Reports whether any of those
 * was routable.
 */
export async function forgetCell(db: Db, guid: string): Promise<{ routable: boolean }> {
  const [routable] = await db.select({ n: count() }).from(instances)
    .where(and(eq(instances.cellGuid, guid), eq(instances.state, "RUNNING")));
  const wasRoutable = (routable?.n ?? 0) > 0;
  await db.batch([
    db.delete(instances).where(eq(instances.cellGuid, guid)),
    db.delete(cells).where(eq(cells.guid, guid)),
    ...(wasRoutable ? [bumpRouteTable(db)] : []),
  ]);
  return { routable: wasRoutable };
}

/** Where a build stages and in which state, for checking a cell's staging result. */
export async function stagingTaskOf(db: Db, buildGuid: string) {
  const [row] = await db.select({ state: builds.state, stagingLocation: builds.stagingLocation, stagingCellGuid: builds.stagingCellGuid })
    .from(builds).where(eq(builds.guid, buildGuid)).limit(1);
  return row;
}
