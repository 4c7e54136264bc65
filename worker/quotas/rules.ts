/**
 * @module Quota decisions, pure (CC's MaxMemoryPolicy, MaxInstanceMemoryPolicy,
 * InstancesPolicy, the log rate and route quotas): given a quota, what its
 * organization or space already uses and what a change would add, the error
 * text or null. Only started apps count towards totals, as in CC; the
 * per-instance memory limit applies to every scale. A limit of null is
 * unlimited. Each message starts with CC's own words and then names the limit.
 *
 * @example
 * processQuotaViolation(q, { memoryInMb: 900, instances: 3, logRate: 0, unlimitedLogRate: false }, null, { instances: 2, memoryInMb: 64, logRate: -1 })
 */

export interface QuotaLimits {
  scope: "organization" | "space";
  name: string;
  totalMemoryInMb: number | null;
  perProcessMemoryInMb: number | null;
  totalInstances: number | null;
  logRateLimitInBytesPerSecond: number | null;
  totalRoutes: number | null;
}

/** What a process asks for: instances × memory, and its log rate (-1 unlimited). */
export interface ProcessDemand {
  instances: number;
  memoryInMb: number;
  logRate: number;
}

/** Started processes' sums in an organization or space. */
export interface QuotaUsage {
  memoryInMb: number;
  instances: number;
  /** Sum of instances × finite log rates. */
  logRate: number;
  /** Some started process has no log rate limit. */
  unlimitedLogRate: boolean;
}

const scopeWord = (q: QuotaLimits) => (q.scope === "organization" ? "organization" : "space");
const spacePrefix = (q: QuotaLimits) => (q.scope === "space" ? "space_" : "");
const logTotal = (d: ProcessDemand) => (d.logRate < 0 ? 0 : d.logRate * d.instances);

/**
 * Whether the process may go from `before` (null: it did not count, its app
 * being stopped) to `after`; `counted` is false when its app stays stopped
 * (only the per-instance limit applies then).
 */
export function processQuotaViolation(q: QuotaLimits, usage: QuotaUsage, before: ProcessDemand | null, after: ProcessDemand, counted = true): string | null {
  const of = `${scopeWord(q)} quota '${q.name}'`;
  if (q.perProcessMemoryInMb !== null && after.memoryInMb > q.perProcessMemoryInMb) {
    return `memory ${spacePrefix(q)}instance_memory_limit_exceeded: ${of} allows ${q.perProcessMemoryInMb} MB per instance, ${after.memoryInMb} MB was asked for`;
  }
  if (!counted) return null;
  const memory = usage.memoryInMb - (before ? before.instances * before.memoryInMb : 0) + after.instances * after.memoryInMb;
  if (q.totalMemoryInMb !== null && memory > q.totalMemoryInMb && memory > usage.memoryInMb) {
    return `memory ${q.scope === "space" ? "space_quota_exceeded" : "quota_exceeded"}: ${of} allows ${q.totalMemoryInMb} MB of memory in total, this would use ${memory} MB`;
  }
  const instances = usage.instances - (before?.instances ?? 0) + after.instances;
  if (q.totalInstances !== null && instances > q.totalInstances && instances > usage.instances) {
    return `instances ${spacePrefix(q)}app_instance_limit_exceeded: ${of} allows ${q.totalInstances} app instances, this would run ${instances}`;
  }
  if (q.logRateLimitInBytesPerSecond !== null) {
    if (after.logRate < 0) return `log_rate_limit cannot be unlimited in ${of}, which allows ${q.logRateLimitInBytesPerSecond} bytes per second`;
    const rate = usage.logRate - (before ? logTotal(before) : 0) + logTotal(after);
    if (rate > q.logRateLimitInBytesPerSecond) {
      return `log_rate_limit exceeds ${scopeWord(q)} log rate quota: ${of} allows ${q.logRateLimitInBytesPerSecond} bytes per second, this would use ${rate}`;
    }
  }
  return null;
}

/** Whether checking a process against `q` needs what started processes use (a total to stay under); a per-instance cap alone does not. */
export const needsUsage = (q: QuotaLimits): boolean =>
  q.totalMemoryInMb !== null || q.totalInstances !== null || q.logRateLimitInBytesPerSecond !== null;

/** Whether one more route fits (CC's RouteCreate wording), `owner` naming the organization or space. */
export function routeQuotaViolation(q: QuotaLimits, routes: number, owner: string): string | null {
  if (q.totalRoutes === null || routes + 1 <= q.totalRoutes) return null;
  return `Routes quota exceeded for ${scopeWord(q)} '${owner}': ${scopeWord(q)} quota '${q.name}' allows ${q.totalRoutes} routes.`;
}
