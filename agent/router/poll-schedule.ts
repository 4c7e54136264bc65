/**
 * @module When to poll the route table next. Pure: the randomness is a parameter.
 *
 * After an answer (200 or 204) and after a single failed request (a long-poll
 * cut by a proxy or a restart of the control plane is normal) the router polls
 * again at once, spread by a small jitter so a fleet of routers does not
 * arrive together. From the second consecutive failure on the control plane
 * counts as unreachable: exponential backoff with "equal jitter" up to a cap,
 * while the proxy keeps serving the last table it has.
 */

export interface PollSchedule {
  /** Upper bound of the random delay before re-polling after an answer. */
  readonly jitterMs: number;
  /** Backoff after the second consecutive failure; doubles per failure. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

/** `failures`: consecutive failed polls so far (0 right after an answer). `random()` ∈ [0, 1). */
export function nextPollDelay(failures: number, schedule: PollSchedule, random: () => number): number {
  if (failures <= 1) return Math.floor(random() * schedule.jitterMs);
  const ceiling = Math.min(schedule.backoffMaxMs, schedule.backoffBaseMs * 2 ** (failures - 2));
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}
