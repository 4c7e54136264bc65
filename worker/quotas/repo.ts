/**
 * @module Quotas in D1: the definitions (organization_quotas, space_quotas in
 * one table), which apply to a space (its organization's, or the default
 * one, and its own space quota), what started apps there use, and the checks
 * the write paths call before they write (a refused change writes nothing).
 */
import { and, asc, count, eq, inArray, or, sql } from "drizzle-orm";
import type { Db } from "../env";
import { apps, organizations, processes, quotas, routes, spaces } from "../db/schema";
import { unprocessable } from "../errors";
import { qualified } from "../db/qualified";
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
  /** What started apps use, by the scope a quota applies to. */
  usage: Record<Quota["scope"], QuotaUsage>;
}

/** What quotasOf reads, for a caller's batch: the space with its organization's guid and name, and the quotas that apply there. */
function spaceQuotaReads(db: Db, spaceGuid: string) {
  const applying = or(
    inArray(quotas.guid, db.select({ g: sql`coalesce(${organizations.quotaGuid}, ${DEFAULT_ORGANIZATION_QUOTA_GUID})` }).from(organizations)
      .where(inArray(organizations.guid, db.select({ g: spaces.organizationGuid }).from(spaces).where(eq(spaces.guid, spaceGuid))))),
    inArray(quotas.guid, db.select({ g: spaces.quotaGuid }).from(spaces).where(eq(spaces.guid, spaceGuid))),
  );
  return [
    db.select({
      guid: spaces.guid, name: spaces.name, orgGuid: spaces.organizationGuid,
      orgName: sql<string>`(select ${organizations.name} from ${organizations} where ${organizations.guid} = ${qualified(spaces.organizationGuid)})`.as("org_name"),
    }).from(spaces).where(eq(spaces.guid, spaceGuid)).limit(1),
    db.select().from(quotas).where(applying),
  ] as const;
}

/**
 * What started apps use in the organization and in the space, for a change that counts (an app started or starting):
 * read with the quotas whether or not one limits a total (CC's default organization quota limits memory, and one batch
 * costs less than a second round trip).
 */
function usageReads(db: Db, spaceGuid: string) {
  return [startedUsageQuery(db, "organization", spaceGuid), startedUsageQuery(db, "space", spaceGuid)] as const;
}

/** What a batch of some reads answers, read by read. */
type RowsOf<T extends readonly unknown[]> = { readonly [K in keyof T]: Awaited<T[K]> };

function quotasOf(
  [[place], found]: RowsOf<ReturnType<typeof spaceQuotaReads>>,
  [[orgUsage], [spaceUsage]]: RowsOf<ReturnType<typeof usageReads>> = [[], []],
): SpaceQuotas | undefined {
  if (!place) return undefined;
  // Organization quota first: its errors are the ones CC reports first.
  const ordered = [...found].sort((a, b) => (a.scope === b.scope ? 0 : a.scope === "organization" ? -1 : 1));
  return {
    space: { guid: place.guid, name: place.name }, organization: { guid: place.orgGuid, name: place.orgName }, quotas: ordered,
    usage: { organization: usageOf(orgUsage), space: usageOf(spaceUsage) },
  };
}

/** The space's quotas, with what is used there when the change counts (else none is read: a change that does not count is checked alone). */
async function quotasForSpace(db: Db, spaceGuid: string, counted: boolean): Promise<SpaceQuotas | undefined> {
  if (!counted) return quotasOf(await db.batch(spaceQuotaReads(db, spaceGuid)));
  const [place, found, org, space] = await db.batch([...spaceQuotaReads(db, spaceGuid), ...usageReads(db, spaceGuid)]);
  return quotasOf([place, found], [org, space]);
}

/** What started processes use in the organization or the space of `spaceGuid`, for a batch; usageOf reads the row. */
function startedUsageQuery(db: Db, scope: Quota["scope"], spaceGuid: string) {
  const inScope = scope === "organization"
    ? inArray(apps.spaceGuid, db.select({ g: spaces.guid }).from(spaces)
      .where(inArray(spaces.organizationGuid, db.select({ g: spaces.organizationGuid }).from(spaces).where(eq(spaces.guid, spaceGuid)))))
    : eq(apps.spaceGuid, spaceGuid);
  return db.select({
    memory: sql<number>`coalesce(sum(${processes.instances} * ${processes.memoryInMb}), 0)`.as("memory"),
    instances: sql<number>`coalesce(sum(${processes.instances}), 0)`.as("instances"),
    logRate: sql<number>`coalesce(sum(case when ${processes.logRateLimitInBytesPerSecond} < 0 then 0 else ${processes.instances} * ${processes.logRateLimitInBytesPerSecond} end), 0)`.as("log_rate"),
    unlimited: sql<number>`coalesce(sum(case when ${processes.logRateLimitInBytesPerSecond} < 0 and ${processes.instances} > 0 then 1 else 0 end), 0)`.as("unlimited"),
  }).from(processes).innerJoin(apps, eq(apps.guid, processes.appGuid)).where(and(eq(apps.state, "STARTED"), inScope));
}

function usageOf(row: Awaited<ReturnType<typeof startedUsageQuery>>[number] | undefined): QuotaUsage {
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
  checkQuotas(await quotasForSpace(db, spaceGuid, counted), changes, counted);
}

function checkQuotas(where: SpaceQuotas | undefined, changes: ProcessChange[], counted: boolean): void {
  if (!where) return;
  for (const q of where.quotas) {
    // What is already used counts only against a total limit.
    const usage = counted && needsUsage(limitsOf(q)) ? { ...where.usage[q.scope] } : { memoryInMb: 0, instances: 0, logRate: 0, unlimitedLogRate: false };
    for (const { before, after } of changes) {
      const problem = processQuotaViolation(limitsOf(q), usage, before, after, counted);
      if (problem) throw unprocessable(problem);
      usage.memoryInMb += after.instances * after.memoryInMb - (before ? before.instances * before.memoryInMb : 0);
      usage.instances += after.instances - (before?.instances ?? 0);
    }
  }
}

/** What starting an app asks of its quotas, for a caller's batch: its processes, its space's quotas, and what is used there. */
export function appStartQuotaReads(db: Db, app: { guid: string; spaceGuid: string }) {
  return [
    db.select({ instances: processes.instances, memoryInMb: processes.memoryInMb, logRate: processes.logRateLimitInBytesPerSecond })
      .from(processes).where(eq(processes.appGuid, app.guid)),
    ...spaceQuotaReads(db, app.spaceGuid),
    ...usageReads(db, app.spaceGuid),
  ] as const;
}

export type AppStartQuotaRows = RowsOf<ReturnType<typeof appStartQuotaReads>>;

/**
 * Refuses (422) starting a stopped app whose processes would pass its organization's or space's quota, from
 * appStartQuotaReads' rows (read by the caller, in its own batch, or here).
 */
export async function checkAppStartQuotas(db: Db, app: { guid: string; spaceGuid: string }, rows?: AppStartQuotaRows): Promise<void> {
  const [procs, place, found, org, space] = rows ?? (await db.batch(appStartQuotaReads(db, app)));
  checkQuotas(quotasOf([place, found], [org, space]), procs.map((after) => ({ before: null, after })), true);
}

/** Refuses (422) a route that would pass the organization's or space's route quota. */
export async function checkRouteQuotas(db: Db, spaceGuid: string): Promise<void> {
  const where = await quotasForSpace(db, spaceGuid, false);
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
