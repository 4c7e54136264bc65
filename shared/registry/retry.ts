/**
 * @module Retry decisions, pure: which failures are worth another attempt and
 * how long to wait. The clock (`now`) is a parameter; waiting is the caller's.
 */
import type { RegistryError } from "./errors";

export interface RetryPolicy {
  /** Attempts after the first. CF's builder uses 4 (MAX_DOCKER_RETRIES). */
  retries: number;
  /** First backoff; doubles per attempt up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A 429 whose Retry-After asks for longer than this is not waited for. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 3, baseDelayMs: 250, maxDelayMs: 4_000, maxRetryAfterMs: 30_000 };

/** Milliseconds to wait before the next attempt after `error` on attempt `attempt` (0-based), or null to give up. */
export function retryDelay(attempt: number, error: RegistryError, policy: RetryPolicy): number | null {
  if (attempt >= policy.retries) return null;
  if (error.code === "rate_limited") {
    if (error.retryAfterSeconds === undefined) return backoff(attempt, policy);
    const ms = error.retryAfterSeconds * 1000;
    return ms <= policy.maxRetryAfterMs ? ms : null;
  }
  if (error.code === "unreachable" || error.code === "timeout") return backoff(attempt, policy);
  return null;
}

const backoff = (attempt: number, p: RetryPolicy) => Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** attempt);

/** `Retry-After` as seconds (delta-seconds or an HTTP date relative to `now`); undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null, now: Date): number | undefined {
  if (!header) return undefined;
  const v = header.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now.getTime()) / 1000));
}
