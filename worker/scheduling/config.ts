/** @module The scheduler's timings: Diego's defaults, the heartbeat TTL overridable by a Worker var. */
import { DEFAULT_CONVERGENCE_CONFIG, type ConvergenceConfig } from "../../shared/convergence/config";
import type { Bindings } from "../env";

export function convergenceConfig(env: Pick<Bindings, "HEARTBEAT_TTL_MS">): ConvergenceConfig {
  if (env.HEARTBEAT_TTL_MS === undefined || env.HEARTBEAT_TTL_MS === "") return DEFAULT_CONVERGENCE_CONFIG;
  const ttl = Number(env.HEARTBEAT_TTL_MS);
  if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new Error(`HEARTBEAT_TTL_MS must be a positive integer, got ${env.HEARTBEAT_TTL_MS}`);
  return { ...DEFAULT_CONVERGENCE_CONFIG, heartbeatTtlMs: ttl };
}
