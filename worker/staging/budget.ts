/**
 * @module Staging's time limits. The budget covers the whole resolution of one
 * build (Worker var STAGING_TIMEOUT_MS; CF's staging timeout is 15 min, a
 * metadata resolution needs far less); each registry request gets at most
 * 30 s of it.
 */
import type { Bindings } from "../env";

export const DEFAULT_STAGING_TIMEOUT_MS = 10 * 60 * 1000;
const MAX_REQUEST_TIMEOUT_MS = 30_000;
/** Wait before re-running a staging run that failed unexpectedly. */
export const STAGING_RETRY_MS = 1_000;

export function stagingBudgetMs(env: Pick<Bindings, "STAGING_TIMEOUT_MS">): number {
  const v = Number(env.STAGING_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_STAGING_TIMEOUT_MS;
}

export const requestTimeoutFor = (remainingMs: number): number => Math.max(1, Math.min(MAX_REQUEST_TIMEOUT_MS, remainingMs));
