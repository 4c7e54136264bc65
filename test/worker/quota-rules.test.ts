/** Quota decisions (worker/quotas/rules.ts) as a table: no I/O. */
import { describe, expect, it } from "vitest";
import { needsUsage, processQuotaViolation, routeQuotaViolation, type QuotaLimits } from "../../worker/quotas/rules";

const q = (l: Partial<QuotaLimits> = {}): QuotaLimits => ({
  scope: "organization", name: "q", totalMemoryInMb: null, perProcessMemoryInMb: null, totalInstances: null, logRateLimitInBytesPerSecond: null, totalRoutes: null, ...l,
});
const idle = { memoryInMb: 0, instances: 0, logRate: 0, unlimitedLogRate: false };
const d = (instances: number, memoryInMb: number, logRate = -1) => ({ instances, memoryInMb, logRate });

describe("processQuotaViolation", () => {
  it("lets anything through an unlimited quota", () => {
    expect(processQuotaViolation(q(), { ...idle, memoryInMb: 1e9 }, null, d(1000, 1e6))).toBeNull();
  });

  it("counts what the process already uses once, and always allows going down", () => {
    const limits = q({ totalMemoryInMb: 256 });
    // 2 × 128 already counted; 3 × 128 would be 384.
    expect(processQuotaViolation(limits, { ...idle, memoryInMb: 256 }, d(2, 128), d(3, 128))).toMatch(/this would use 384 MB/);
    expect(processQuotaViolation(limits, { ...idle, memoryInMb: 256 }, d(2, 128), d(2, 128))).toBeNull();
    // Over the limit already (the quota was lowered): shrinking is fine.
    expect(processQuotaViolation(limits, { ...idle, memoryInMb: 512 }, d(4, 128), d(3, 128))).toBeNull();
  });

  it("checks memory per instance even for a stopped app, totals only for started ones", () => {
    const limits = q({ perProcessMemoryInMb: 128, totalMemoryInMb: 100 });
    expect(processQuotaViolation(limits, idle, null, d(1, 256), false)).toMatch(/^memory instance_memory_limit_exceeded/);
    expect(processQuotaViolation(limits, idle, null, d(5, 64), false)).toBeNull();
    expect(processQuotaViolation(limits, idle, null, d(5, 64), true)).toMatch(/^memory quota_exceeded/);
  });

  it("names the space's limits with CC's space_ words", () => {
    const space = q({ scope: "space", name: "s", totalInstances: 2 });
    expect(processQuotaViolation(space, idle, null, d(3, 1))).toBe("instances space_app_instance_limit_exceeded: space quota 's' allows 2 app instances, this would run 3");
  });

  it("refuses an unlimited log rate under a log rate quota, and a sum over it", () => {
    const limits = q({ logRateLimitInBytesPerSecond: 1000 });
    expect(processQuotaViolation(limits, idle, null, d(1, 1))).toMatch(/^log_rate_limit cannot be unlimited/);
    expect(processQuotaViolation(limits, { ...idle, logRate: 600 }, null, d(1, 1, 500))).toMatch(/^log_rate_limit exceeds organization log rate quota/);
    expect(processQuotaViolation(limits, { ...idle, logRate: 400 }, null, d(2, 1, 300))).toBeNull();
  });
});

describe("routeQuotaViolation", () => {
  it("allows up to the limit, in CC's words past it", () => {
    expect(routeQuotaViolation(q({ totalRoutes: 2 }), 1, "o")).toBeNull();
    expect(routeQuotaViolation(q({ totalRoutes: 2 }), 2, "o")).toBe("Routes quota exceeded for organization 'o': organization quota 'q' allows 2 routes.");
  });
});

describe("needsUsage", () => {
  it("reads started processes' sums only for a quota with a total to stay under", () => {
    expect(needsUsage(q())).toBe(false);
    expect(needsUsage(q({ perProcessMemoryInMb: 128, totalRoutes: 5 }))).toBe(false);
    expect(needsUsage(q({ totalMemoryInMb: 1024 }))).toBe(true);
    expect(needsUsage(q({ totalInstances: 10 }))).toBe(true);
    expect(needsUsage(q({ logRateLimitInBytesPerSecond: 1000 }))).toBe(true);
  });
});
