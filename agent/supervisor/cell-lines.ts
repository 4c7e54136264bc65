/**
 * @module What the cell says about an instance in its app's logs (CF's CELL
 * lines, in the rep's and executor's words), as a pure function of what
 * happened to it. The runner tells the events; the log shipper ships the lines.
 */
import type { Exit } from "../../shared/protocol/instance";

export type InstanceEvent =
  | { type: "creating" }
  | { type: "created" }
  | { type: "create_failed"; reason: string }
  | { type: "healthy" }
  | { type: "start_timeout"; timeoutS: number; lastError: string | null }
  | { type: "unhealthy"; reason: string }
  | { type: "exited"; exit: Exit }
  | { type: "stopping" }
  | { type: "destroying" };

function exitStatus(exit: Exit): string {
  if (exit.oom) return `Exit status ${exit.status ?? 137} (out of memory)`;
  if (exit.signal) return `Exit status ${exit.status ?? "unknown"} (killed by ${exit.signal})`;
  return `Exit status ${exit.status ?? "unknown"}`;
}

export function cellLine(cellId: string, instanceGuid: string, e: InstanceEvent): string {
  switch (e.type) {
    case "creating":
      return `Cell ${cellId} creating container for instance ${instanceGuid}`;
    case "created":
      return `Cell ${cellId} successfully created container for instance ${instanceGuid}`;
    case "create_failed":
      return `Cell ${cellId} failed to create container for instance ${instanceGuid}: ${e.reason}`;
    case "healthy":
      return "Container became healthy";
    case "start_timeout":
      return `Timed out after ${e.timeoutS}s: health check never passed.${e.lastError ? ` Last error: ${e.lastError}` : ""}`;
    case "unhealthy":
      return `Container became unhealthy: ${e.reason}`;
    case "exited":
      return exitStatus(e.exit);
    case "stopping":
      return `Cell ${cellId} stopping instance ${instanceGuid}`;
    case "destroying":
      return `Cell ${cellId} destroying container for instance ${instanceGuid}`;
  }
}
