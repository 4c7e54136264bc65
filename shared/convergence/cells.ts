/** @module Cell liveness: Diego's presence TTL, decided from the last heartbeat and the clock. */
import type { ConvergenceConfig } from "./config";
import type { CellView } from "./model";
import { stalledWithin, type Stall } from "./stalls";

type Seen = Pick<CellView, "last_heartbeat_at" | "registered_at">;

/** The last sign of life: the last heartbeat, or registration before the first one. */
export const lastSeenAt = (cell: Seen): number => cell.last_heartbeat_at ?? cell.registered_at;

/**
 * A cell is alive while it has been silent at most `heartbeatTtlMs`, not
 * counting the control plane's own stalls since its last sign of life.
 */
export function cellIsAlive(cell: Seen, now: number, config: Pick<ConvergenceConfig, "heartbeatTtlMs">, stalls: readonly Stall[] = []): boolean {
  const seen = lastSeenAt(cell);
  return now - seen - stalledWithin(stalls, seen, now) <= config.heartbeatTtlMs;
}

/** The first moment the cell counts as gone if no heartbeat arrives (stalls are all in the past). */
export const cellExpiresAt = (cell: CellView, config: ConvergenceConfig, stalls: readonly Stall[] = []): number =>
  lastSeenAt(cell) + config.heartbeatTtlMs + 1 + stalledWithin(stalls, lastSeenAt(cell), Infinity);
