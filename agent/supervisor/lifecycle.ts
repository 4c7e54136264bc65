/**
 * @module The instance state machine, as pure functions (Nomad's TaskRunner
 * states, Diego's ActualLRP states as a cell reports them):
 *
 *   (new) --started--> STARTING --healthy--> RUNNING
 *   STARTING --start_timeout | exited--> CRASHED
 *   RUNNING  --unhealthy | exited-->     CRASHED
 *   any      --stopped-->                STOPPED
 *
 * CRASHED and STOPPED are final for one container: a restart is a new
 * container, decided by the control plane (Diego's restart calculator).
 */
import type { Exit, ReportedState } from "../../shared/protocol/instance";

export type LifecycleEvent =
  | { type: "healthy" }
  | { type: "unhealthy"; reason: string }
  | { type: "start_timeout"; timeoutS: number; lastError: string | null }
  | { type: "start_failed"; reason: string }
  | { type: "exited"; exit: Exit }
  | { type: "stopped" };

export interface Transition {
  state: ReportedState;
  reason: string | null;
  exit: Exit | null;
  /** The container must be killed (it is alive but the instance is over). */
  kill: boolean;
}

/** A crash reason a person can read, in the words CF's events use. */
export function exitReason(exit: Exit): string {
  if (exit.oom) return "out of memory: the process exceeded its memory limit and was killed";
  if (exit.signal) return `process was killed by signal ${exit.signal}`;
  return `process exited with status ${exit.status ?? "unknown"}`;
}

/** What an event does to an instance in `state`; null when it changes nothing (late or duplicate events). */
export function transition(state: ReportedState, event: LifecycleEvent): Transition | null {
  if (state === "STOPPED") return null;
  if (event.type === "stopped") return { state: "STOPPED", reason: null, exit: null, kill: false };
  if (state === "CRASHED") return null;
  switch (event.type) {
    case "healthy":
      return state === "STARTING" ? { state: "RUNNING", reason: null, exit: null, kill: false } : null;
    case "unhealthy":
      return state === "RUNNING" ? { state: "CRASHED", reason: `liveness check failed: ${event.reason}`, exit: null, kill: true } : null;
    case "start_timeout":
      return state === "STARTING"
        ? {
            state: "CRASHED",
            reason: `Instance never healthy after ${event.timeoutS}s${event.lastError ? `: ${event.lastError}` : ""}`,
            exit: null,
            kill: true,
          }
        : null;
    case "start_failed":
      return { state: "CRASHED", reason: event.reason, exit: null, kill: true };
    case "exited":
      return { state: "CRASHED", reason: exitReason(event.exit), exit: event.exit, kill: false };
  }
}
