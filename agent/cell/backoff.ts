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
 * does not stretch the gap between beats toward the presence TTL. After
 * `failures` failed beats in a row the next is sent sooner — from a quarter
 * interval, doubling to one, with full jitter so cells coming back from one
 * outage do not beat in step — since three missed intervals make the cell lost.
 */
export function nextHeartbeatDelay(startedAt: number, now: number, intervalMs: number, failures: number, random: () => number = Math.random): number {
  const due = failures === 0 ? startedAt + intervalMs : now + retryDelay(failures - 1, { baseMs: intervalMs / 4, maxMs: intervalMs }, random);
  // At most an interval: the clock is the wall clock, which can step back (NTP) during a beat.
  return Math.min(intervalMs, Math.max(0, Math.round(due - now)));
}
