/**
 * @module Quotas in D1: the definitions (organization_quotas, space_quotas in
 * one table), which apply to a space (its organization's, or the default
 * one, and its own space quota), what started apps there use, and the checks
 * the write paths call before they write (a refused change writes nothing).
 */
import { and, asc, count, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../env";
import { apps, organizations, processes, quotas, routes, spaces } from "../db/schema";
import { unprocessable } from "../errors";
import { isoNow, newGuid } from "../http/ids";
import { needsUsage, processQuotaViolation, routeQuotaViolation, type ProcessDemand, type QuotaLimits, type QuotaUsage } from "./rules";

/** The "default" organization quota the migration made: every organization without one of its own has it. */
export const DEFAULT_ORGANIZATION_QUOTA_GUID = "9f0a3c1e-5b7d-4e2a-8c6f-1d2e3f4a5b6c";

export type Quota = typeof quotas.$inferSelect;

export const limitsOf = (q: Quota): QuotaLimits => ({
  scope: q.scope, name: q.name, totalMemoryInMb: q.totalMemoryInMb, perProcessMemoryInMb: q.perProcessMemoryInMb,
  totalInstances: q.totalInstances, logRateLimitInBytesPerSecond: q.logRateLimitInBytesPerSecond, totalRoutes: q.totalRoutes,
});

export async function getQuota(db: Db, guid: string, scope: Quota["scope"]): Promise<Quota | undefined> {
  const [row] = await db.select().from(quotas).where(and(eq(quotas.guid, guid), eq(quotas.scope, scope))).limit(1);
  return row;
}

export async function listQuotas(db: Db, scope: Quota["scope"], page: number, perPage: number): Promise<{ total: number; quotas: Quota[] }> {
  const [rows, [n]] = await db.batch([
    db.select().from(quotas).where(eq(quotas.scope, scope)).orderBy(asc(quotas.createdAt), asc(quotas.guid)).limit(perPage).offset((page - 1) * perPage),
    db.select({ n: count() }).from(quotas).where(eq(quotas.scope, scope)),
  ]);
  return { total: n?.n ?? 0, quotas: rows };
}

/** Organizations (for an organization quota) or spaces (for a space quota) the quota applies to. */
export async function appliedTo(db: Db, q: Quota): Promise<string[]> {
  if (q.scope === "space") return (await db.select({ guid: spaces.guid }).from(spaces).where(eq(spaces.quotaGuid, q.guid))).map((r) => r.guid);
  const applies = q.guid === DEFAULT_ORGANIZATION_QUOTA_GUID
    ? sql`${organizations.quotaGuid} is null or ${organizations.quotaGuid} = ${q.guid}`
    : eq(organizations.quotaGuid, q.guid);
  return (await db.select({ guid: organizations.guid }).from(organizations).where(applies)).map((r) => r.guid);
}

export type QuotaInput = Pick<Quota, "name" | "totalMemoryInMb" | "perProcessMemoryInMb" | "totalInstances" | "logRateLimitInBytesPerSecond" | "totalRoutes">;

/** Creates a quota; undefined when the name is taken (in its scope and organization). */
export async function createQuota(db: Db, scope: Quota["scope"], input: QuotaInput, organizationGuid = "", now = new Date()): Promise<Quota | undefined> {
  const guid = newGuid();
  const res = await db.insert(quotas).values({ guid, scope, organizationGuid, ...input, createdAt: isoNow(now), updatedAt: isoNow(now) }).onConflictDoNothing();
  return res.meta.changes === 1 ? getQuota(db, guid, scope) : undefined;
}

export async function updateQuota(db: Db, q: Quota, input: Partial<QuotaInput>, now = new Date()): Promise<Quota | "name_taken"> {
  try {
    await db.update(quotas).set({ ...input, updatedAt: isoNow(now) }).where(eq(quotas.guid, q.guid));
  } catch (e) {
    if (String(e).includes("UNIQUE")) return "name_taken";
    throw e;
  }
  return (await getQuota(db, q.guid, q.scope))!;
}

export async function deleteQuota(db: Db, guid: string): Promise<void> {
  await db.delete(quotas).where(eq(quotas.guid, guid));
}

/** Applies an organization quota to organizations, or a space quota to spaces (which must be in its organization). */
export async function applyQuota(db: Db, q: Quota, guids: string[]): Promise<void> {
  if (guids.length === 0) return;
  if (q.scope === "organization") await db.update(organizations).set({ quotaGuid: q.guid }).where(inArray(organizations.guid, guids));
  else await db.update(spaces).set({ quotaGuid: q.guid }).where(and(inArray(spaces.guid, guids), eq(spaces.organizationGuid, q.organizationGuid)));
}

export async function removeSpaceQuota(db: Db, q: Quota, spaceGuid: string): Promise<void> {
  await db.update(spaces).set({ quotaGuid: null }).where(and(eq(spaces.guid, spaceGuid), eq(spaces.quotaGuid, q.guid)));
}

interface SpaceQuotas {
  space: { guid: string; name: string };
  organization: { guid: string; name: string };
  /** The organization's quota (or the default), then the space's own, if any. */
  quotas: Quota[];
}

async function quotasForSpace(db: Db, spaceGuid: string): Promise<SpaceQuotas | undefined> {
  const [row] = await db.select({ guid: spaces.guid, name: spaces.name, spaceQuota: spaces.quotaGuid, orgGuid: organizations.guid, orgName: organizations.name, orgQuota: organizations.quotaGuid })
    .from(spaces).innerJoin(organizations, eq(organizations.guid, spaces.organizationGuid)).where(eq(spaces.guid, spaceGuid)).limit(1);
  if (!row) return undefined;
  const wanted = [row.orgQuota ?? DEFAULT_ORGANIZATION_QUOTA_GUID, ...(row.spaceQuota ? [row.spaceQuota] : [])];
  const found = await db.select().from(quotas).where(inArray(quotas.guid, wanted));
  // Organization quota first: its errors are the ones CC reports first.
  found.sort((a, b) => (a.scope === b.scope ? 0 : a.scope === "organization" ? -1 : 1));
  return { space: { guid: row.guid, name: row.name }, organization: { guid: row.orgGuid, name: row.orgName }, quotas: found };
}

/** Started processes' usage in an organization or a space. */
async function startedUsage(db: Db, q: Quota, where: SpaceQuotas): Promise<QuotaUsage> {
  const inScope = q.scope === "organization"
    ? inArray(apps.spaceGuid, db.select({ g: spaces.guid }).from(spaces).where(eq(spaces.organizationGuid, where.organization.guid)))
    : eq(apps.spaceGuid, where.space.guid);
  const [row] = await db.select({
    memory: sql<number>`coalesce(sum(${processes.instances} * ${processes.memoryInMb}), 0)`,
    instances: sql<number>`coalesce(sum(${processes.instances}), 0)`,
    logRate: sql<number>`coalesce(sum(case when ${processes.logRateLimitInBytesPerSecond} < 0 then 0 else ${processes.instances} * ${processes.logRateLimitInBytesPerSecond} end), 0)`,
    unlimited: sql<number>`coalesce(sum(case when ${processes.logRateLimitInBytesPerSecond} < 0 and ${processes.instances} > 0 then 1 else 0 end), 0)`,
  }).from(processes).innerJoin(apps, eq(apps.guid, processes.appGuid)).where(and(eq(apps.state, "STARTED"), inScope));
  return { memoryInMb: Number(row?.memory ?? 0), instances: Number(row?.instances ?? 0), logRate: Number(row?.logRate ?? 0), unlimitedLogRate: Number(row?.unlimited ?? 0) > 0 };
}

export interface ProcessChange {
  /** What the process asks for now, if it counts (its app is started); null if not. */
  before: ProcessDemand | null;
  after: ProcessDemand;
}

/**
 * Refuses (422, nothing written) processes in `spaceGuid` going from their
 * `before` to their `after` when that breaks the organization's or space's
 * quota; `counted` is whether their app is (or is being) started. Several
 * changes (an app's processes started together) add up.
 */
export async function checkProcessQuotas(db: Db, spaceGuid: string, changes: ProcessChange[], counted: boolean): Promise<void> {
  const where = await quotasForSpace(db, spaceGuid);
  if (!where) return;
  for (const q of where.quotas) {
    // Sums over the organization's started apps only when a total limit needs them.
    const usage = counted && needsUsage(limitsOf(q)) ? await startedUsage(db, q, where) : { memoryInMb: 0, instances: 0, logRate: 0, unlimitedLogRate: false };
    for (const { before, after } of changes) {
      const problem = processQuotaViolation(limitsOf(q), usage, before, after, counted);
      if (problem) throw unprocessable(problem);
      usage.memoryInMb += after.instances * after.memoryInMb - (before ? before.instances * before.memoryInMb : 0);
      usage.instances += after.instances - (before?.instances ?? 0);
    }
  }
}

/** Refuses (422) starting a stopped app whose processes would pass its organization's or space's quota. */
export async function checkAppStartQuotas(db: Db, app: { guid: string; spaceGuid: string }): Promise<void> {
  const procs = await db.select({ instances: processes.instances, memoryInMb: processes.memoryInMb, logRate: processes.logRateLimitInBytesPerSecond })
    .from(processes).where(eq(processes.appGuid, app.guid));
  await checkProcessQuotas(db, app.spaceGuid, procs.map((after) => ({ before: null, after })), true);
}

/** Refuses (422) a route that would pass the organization's or space's route quota. */
export async function checkRouteQuotas(db: Db, spaceGuid: string): Promise<void> {
  const where = await quotasForSpace(db, spaceGuid);
  if (!where) return;
  for (const q of where.quotas) {
    if (q.totalRoutes === null) continue;
    const inScope = q.scope === "organization"
      ? inArray(routes.spaceGuid, db.select({ g: spaces.guid }).from(spaces).where(eq(spaces.organizationGuid, where.organization.guid)))
      : eq(routes.spaceGuid, where.space.guid);
    const [n] = await db.select({ n: count() }).from(routes).where(inScope);
    const problem = routeQuotaViolation(limitsOf(q), n?.n ?? 0, q.scope === "organization" ? where.organization.name : where.space.name);
    if (problem) throw unprocessable(problem);
  }
}
