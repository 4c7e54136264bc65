/**
 * @module Every timing convergence and the restart calculator use. Diego's
 * defaults (reference §5); tests and benches pass shorter ones.
 */

export interface RestartPolicy {
  /** Crashes below this count restart at once (Diego's DefaultImmediateRestarts = 3). */
  immediateRestarts: number;
  /** First backoff, at the count equal to `immediateRestarts` (30 s). */
  backoffBaseMs: number;
  /** Longest backoff (16 min). */
  backoffCapMs: number;
  /** A crash after running this long counts as the first again (CrashResetTimeout = 5 min). */
  crashResetMs: number;
  /** At this many crashes the instance is never restarted (DefaultMaxRestarts = 200). */
  maxRestarts: number;
}

export interface ConvergenceConfig {
  /** A cell whose last heartbeat is older than this has disappeared (Diego's presence TTL, 15 s). */
  heartbeatTtlMs: number;
  /** How soon to retry instances that could not be placed. */
  unplacedRetryMs: number;
  /**
   * A live cell that has not acknowledged a placement (no STARTING report)
   * this long after it was claimed never got it or lost it: placed again.
   * Agents report STARTING as soon as the desired set reaches them, before any pull.
   */
  claimTimeoutMs: number;
  restart: RestartPolicy;
  /**
   * Passes read only what their wakes name; this often a pass reads everything
   * (Diego's ConvergeRepeatInterval, 30 s): the backstop for a missed wake.
   */
  fullPassIntervalMs: number;
  /**
   * When more than this share of the ACTIVE cells (three or more) are silent at
   * once, the control plane or its network is the likelier fault: none is
   * marked LOST and nothing is replaced until they report again or fewer are
   * silent (Kubernetes' node lifecycle controller stops evicting in a "full
   * disruption"; its unhealthy-zone threshold is 0.55).
   */
  disruptionThreshold: number;
  /**
   * A pass or a late alarm longer than this stalled the control plane for the
   * excess: that time is not counted against cells' heartbeats or claims.
   */
  stallSlackMs: number;
  /**
   * At most one cell is marked LOST per this interval, the longest silent
   * first; the others count as live until their turn (Kubernetes' node
   * lifecycle controller evicts 0.1 nodes/s): a fault the stalls did not
   * explain replaces one cell's instances at a time, not the fleet's.
   */
  lostCellIntervalMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  immediateRestarts: 3,
  backoffBaseMs: 30_000,
  backoffCapMs: 16 * 60_000,
  crashResetMs: 5 * 60_000,
  maxRestarts: 200,
};

export const DEFAULT_CONVERGENCE_CONFIG: ConvergenceConfig = {
  heartbeatTtlMs: 15_000,
  unplacedRetryMs: 5_000,
  claimTimeoutMs: 30_000,
  restart: DEFAULT_RESTART_POLICY,
  fullPassIntervalMs: 30_000,
  disruptionThreshold: 0.55,
  stallSlackMs: 1_000,
  lostCellIntervalMs: 10_000,
};
