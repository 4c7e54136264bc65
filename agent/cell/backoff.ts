/** @module Retry delays with full jitter (AWS's "exponential backoff and jitter"), the random source a parameter. */

export interface BackoffConfig {
  baseMs: number;
  maxMs: number;
}

export const defaultBackoff: BackoffConfig = { baseMs: 250, maxMs: 15_000 };

/** Delay before retry number `attempt` (0-based): uniform in [cap/2, cap], cap = min(max, base·2^attempt). */
export function retryDelay(attempt: number, config: BackoffConfig = defaultBackoff, random: () => number = Math.random): number {
  const cap = Math.min(config.maxMs, config.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/**
 * The wait before the next heartbeat. Start to start, so a slow control plane
 * does not stretch the gap between beats toward the presence TTL; a beat that
 * failed is sent again after a quarter of the interval, since three missed
 * intervals make the cell lost.
 */
export function nextHeartbeatDelay(startedAt: number, now: number, intervalMs: number, delivered: boolean): number {
  const due = delivered ? startedAt + intervalMs : now + intervalMs / 4;
  // At most an interval: the clock is the wall clock, which can step back (NTP) during a beat.
  return Math.min(intervalMs, Math.max(0, Math.round(due - now)));
}
