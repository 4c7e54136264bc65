/** @module Cell liveness: Diego's presence TTL, decided from the last heartbeat and the clock. */
import type { ConvergenceConfig } from "./config";
import type { CellView } from "./model";

type Seen = Pick<CellView, "last_heartbeat_at" | "registered_at">;

/** The last sign of life: the last heartbeat, or registration before the first one. */
export const lastSeenAt = (cell: Seen): number => cell.last_heartbeat_at ?? cell.registered_at;

/** A cell is alive while its last sign of life is at most `heartbeatTtlMs` old. */
export function cellIsAlive(cell: Seen, now: number, config: Pick<ConvergenceConfig, "heartbeatTtlMs">): boolean {
  return now - lastSeenAt(cell) <= config.heartbeatTtlMs;
}

/** The first moment the cell counts as gone if no heartbeat arrives. */
export const cellExpiresAt = (cell: CellView, config: ConvergenceConfig): number => lastSeenAt(cell) + config.heartbeatTtlMs + 1;
