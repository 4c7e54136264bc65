/**
 * @module The scheduler's timings: Diego's defaults, each overridable by a
 * Worker var (tests and benches shorten them; production keeps Diego's).
 */
import { DEFAULT_CONVERGENCE_CONFIG, type ConvergenceConfig } from "../../shared/convergence/config";
import type { Bindings } from "../env";

type TimingVars = Pick<Bindings, "HEARTBEAT_TTL_MS" | "CLAIM_TIMEOUT_MS" | "CRASH_BACKOFF_BASE_MS" | "FULL_PASS_INTERVAL_MS" | "STALL_SLACK_MS" | "LOST_CELL_INTERVAL_MS">;

/** A var's value as a positive integer, or `fallback` when unset; a bad value stops the Worker loudly. */
export function positiveInt<V extends object>(vars: V, name: keyof V & string, fallback: number): number {
  const raw = vars[name] as string | undefined;
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return n;
}

export function convergenceConfig(env: TimingVars): ConvergenceConfig {
  const d = DEFAULT_CONVERGENCE_CONFIG;
  return {
    ...d,
    heartbeatTtlMs: positiveInt(env, "HEARTBEAT_TTL_MS", d.heartbeatTtlMs),
    claimTimeoutMs: positiveInt(env, "CLAIM_TIMEOUT_MS", d.claimTimeoutMs),
    fullPassIntervalMs: positiveInt(env, "FULL_PASS_INTERVAL_MS", d.fullPassIntervalMs),
    stallSlackMs: positiveInt(env, "STALL_SLACK_MS", d.stallSlackMs),
    lostCellIntervalMs: positiveInt(env, "LOST_CELL_INTERVAL_MS", d.lostCellIntervalMs),
    restart: { ...d.restart, backoffBaseMs: positiveInt(env, "CRASH_BACKOFF_BASE_MS", d.restart.backoffBaseMs) },
  };
}
