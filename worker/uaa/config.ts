/**
 * @module Token lifetimes and the login lockout: UAA's defaults for the `cf`
 * client, each overridable by a Worker var (tests shorten them).
 */
import type { Bindings } from "../env";
import { positiveInt } from "../scheduling/config";

export interface UaaConfig {
  accessTokenTtlS: number;
  refreshTokenTtlS: number;
  /** Failed sign-ins of one user name within `lockoutWindowS` that lock it until the window ends (UAA: 5 in 300 s). */
  lockoutFailures: number;
  lockoutWindowS: number;
}

export function uaaConfig(env: Bindings): UaaConfig {
  return {
    // CF deployments give the cf client 20 min access tokens and 2 week refresh tokens.
    accessTokenTtlS: positiveInt(env, "ACCESS_TOKEN_TTL_SECONDS", 1200),
    refreshTokenTtlS: positiveInt(env, "REFRESH_TOKEN_TTL_SECONDS", 14 * 24 * 3600),
    lockoutFailures: positiveInt(env, "LOGIN_LOCKOUT_FAILURES", 5),
    lockoutWindowS: positiveInt(env, "LOGIN_LOCKOUT_WINDOW_SECONDS", 300),
  };
}
