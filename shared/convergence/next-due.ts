/**
 * @module When the scheduler must look again although nothing reported in:
 * the next heartbeat expiry, the next crash backoff ending, the next claim
 * timing out, the next retry of instances that found no cell. The scheduler
 * sets its alarm to this.
 */
import type { ConvergenceConfig } from "./config";
import { cellExpiresAt, cellIsAlive } from "./cells";
import type { ActualInstance, CellView } from "./model";
import { restartDueAt } from "./restart-calculator";
import { NO_HISTORY, type ControlPlaneHistory } from "./stalls";

/**
 * When to look at the fleet's oldest unacknowledged claim again: at its
 * timeout; once past it (its cell has not heartbeated since, or the control
 * plane stalled), after the retry interval, never at a past moment (that
 * alarm would run passes back to back until the heartbeat came).
 */
export function claimLookAt(oldestClaimSince: number | null, now: number, config: ConvergenceConfig): number | null {
  if (oldestClaimSince === null) return null;
  const timeout = oldestClaimSince + config.claimTimeoutMs + 1;
  return timeout > now ? timeout : now + config.unplacedRetryMs;
}

/** The earliest future moment something becomes due, or null when nothing will. */
export function nextDueAt(
  actual: ActualInstance[], cells: CellView[], now: number, config: ConvergenceConfig, { stalls, lastLostAt }: ControlPlaneHistory = NO_HISTORY,
): number | null {
  const due: number[] = [];
  for (const c of cells) {
    if (c.state !== "LOST" && cellIsAlive(c, now, config, stalls)) due.push(cellExpiresAt(c, config, stalls));
    // A silent cell the LOST rate limit held back: its turn.
    else if (c.state === "ACTIVE" && lastLostAt !== null) due.push(lastLostAt + config.lostCellIntervalMs);
  }
  for (const i of actual) {
    if (i.presence !== "ORDINARY") continue;
    if (i.state === "CRASHED") {
      const at = restartDueAt(i, config.restart);
      if (at !== null) due.push(at);
    } else if (i.state === "CLAIMED") {
      due.push(i.since + config.claimTimeoutMs + 1);
    } else if (i.state === "UNCLAIMED") {
      due.push(now + config.unplacedRetryMs);
    }
  }
  const future = due.filter((t) => t > now);
  return future.length === 0 ? null : Math.min(...future);
}
