import { describe, expect, it } from "vitest";
import { DEFAULT_CONVERGENCE_CONFIG } from "../../shared/convergence/config";
import { convergenceConfig } from "../../worker/scheduling/config";

describe("convergence timings from Worker vars", () => {
  it("keeps Diego's defaults when no var is set", () => {
    expect(convergenceConfig({})).toEqual(DEFAULT_CONVERGENCE_CONFIG);
    expect(convergenceConfig({ HEARTBEAT_TTL_MS: "" })).toEqual(DEFAULT_CONVERGENCE_CONFIG);
  });

  it("overrides the heartbeat TTL, claim timeout and first backoff only", () => {
    const c = convergenceConfig({ HEARTBEAT_TTL_MS: "3000", CLAIM_TIMEOUT_MS: "4000", CRASH_BACKOFF_BASE_MS: "2000" });
    expect(c).toEqual({
      ...DEFAULT_CONVERGENCE_CONFIG,
      heartbeatTtlMs: 3000,
      claimTimeoutMs: 4000,
      restart: { ...DEFAULT_CONVERGENCE_CONFIG.restart, backoffBaseMs: 2000 },
    });
  });

  it("refuses a value that is not a positive integer, naming the var", () => {
    for (const bad of ["0", "-5", "1.5", "soon"]) {
      expect(() => convergenceConfig({ CRASH_BACKOFF_BASE_MS: bad })).toThrow(`CRASH_BACKOFF_BASE_MS must be a positive integer, got ${bad}`);
    }
  });
});
