/**
 * @module Login lockout, UAA's rule: after `failures` failed sign-ins of one
 * user name within a window, that name is refused until the window ends, even
 * with the right password. Keyed by the name asked for, whether or not it
 * exists, so a lockout tells an attacker nothing about which names are real.
 */

export interface FailureRecord {
  failures: number;
  /** Epoch ms of the window's first failure. */
  windowStart: number;
}

export interface LockoutPolicy {
  failures: number;
  windowMs: number;
}

export const windowOpen = (r: FailureRecord, now: number, p: LockoutPolicy): boolean => now < r.windowStart + p.windowMs;

export function isLocked(r: FailureRecord | undefined, now: number, p: LockoutPolicy): boolean {
  return r !== undefined && r.failures >= p.failures && windowOpen(r, now, p);
}
