/**
 * @module Diego's restart calculator (bbs models/restart_calculator.go and
 * CrashActualLRP), with the clock a parameter.
 *
 * Crash #1 and #2 restart at once; from the 3rd the instance stays CRASHED for
 * 30 s × 2^(n−3), capped at 16 min; at 200 it stays CRASHED for good. A crash
 * after more than 5 min of RUNNING counts as the first again.
 */
import type { RestartPolicy } from "./config";

/** The crash count after a crash, given the state the instance was in and since when. */
export function crashCountAfterCrash(
  previous: { crash_count: number; state: string; since: number },
  now: number,
  policy: RestartPolicy,
): number {
  const ranLongEnough = previous.state === "RUNNING" && now - previous.since > policy.crashResetMs;
  return (ranLongEnough ? 0 : previous.crash_count) + 1;
}

/** How long a crashed instance waits before its restart (0 = at once), or null for never. */
export function restartDelayMs(crashCount: number, policy: RestartPolicy): number | null {
  if (crashCount >= policy.maxRestarts) return null;
  if (crashCount < policy.immediateRestarts) return 0;
  const doublings = crashCount - policy.immediateRestarts;
  // 2^doublings overflows long before 200 crashes; the cap is reached after a few.
  const delay = policy.backoffBaseMs * 2 ** Math.min(doublings, 30);
  return Math.min(delay, policy.backoffCapMs);
}

/** When a crashed instance (crashed at `since`) may restart, or null for never. */
export function restartDueAt(crashed: { crash_count: number; since: number }, policy: RestartPolicy): number | null {
  const delay = restartDelayMs(crashed.crash_count, policy);
  return delay === null ? null : crashed.since + delay;
}
