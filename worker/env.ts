/** @module Bindings and per-request variables of the control plane Worker. */
import type { DrizzleD1Database } from "drizzle-orm/d1";
import type * as schema from "./db/schema";
import type { Principal } from "./auth/principal";

/**
 * The bindings `wrangler types` generates from wrangler.toml (worker/bindings.d.ts:
 * D1, the typed Durable Object namespaces, the vars every config sets), plus
 * the optional vars and the secrets it cannot see. Run `npm run types` after
 * editing wrangler.toml.
 */
export interface Bindings extends WorkerBindings, UntypedBindings {}

/** What `wrangler types` cannot see: optional vars and secrets. */
export interface UntypedBindings {
  /** Optional: lines kept per app (default 1000) and the per-app log rate limit (lines/s, default 1000). */
  LOG_KEEP_LINES?: string;
  LOG_LINES_PER_SECOND?: string;
  /** How clients reach apps: the routers' scheme (http or https, default http) and port when not the scheme's own. */
  APPS_SCHEME?: string;
  APPS_PORT?: string;
  /** Cell presence TTL in ms (Diego: 15 s); unset means the default. */
  HEARTBEAT_TTL_MS?: string;
  /** How long a cell may leave a placement unacknowledged, in ms (default 30 s). */
  CLAIM_TIMEOUT_MS?: string;
  /** First crash backoff in ms (Diego: 30 s), doubling up to the 16 min cap. */
  CRASH_BACKOFF_BASE_MS?: string;
  /** How often a pass reads everything rather than what its wakes named, in ms (default 30 s). */
  FULL_PASS_INTERVAL_MS?: string;
  /** A pass or late alarm longer than this (ms, default 1000) stalled the control plane; the excess is not counted against cells. */
  STALL_SLACK_MS?: string;
  /** At most one cell is marked LOST per this many ms (default 10 000, Kubernetes' 0.1 nodes/s). */
  LOST_CELL_INTERVAL_MS?: string;
  /** Time budget for resolving one build's image, in ms (default 10 min). */
  STAGING_TIMEOUT_MS?: string;
  /** "1": a log line per request and per scheduler pass with its D1 round trips, statements and wait (benches). */
  PROFILE?: string;
  /** How long an asynchronous job (apply_manifest) may keep retrying before it FAILs, in ms (default 5 min). */
  JOB_TIMEOUT_MS?: string;
  /** How long an enrollment token enrolls (default 1 h). */
  ENROLLMENT_TOKEN_TTL_MS?: string;
  /** Secret: the bootstrap admin token. */
  ADMIN_TOKEN: string;
  /** Secret: 32 bytes, base64; AES-GCM key for registry passwords at rest. */
  ENCRYPTION_KEY: string;
  /** Secret: the password of the `admin` user for `cf login` / the password grant. */
  ADMIN_PASSWORD?: string;
  /** Secret: HMAC key (at least 32 bytes) that signs access and refresh tokens (auth/jwt.ts). */
  TOKEN_SIGNING_KEY?: string;
  /** Secret, optional: previous signing keys, comma-separated, still accepted while tokens they signed live. */
  TOKEN_VERIFICATION_KEYS?: string;
  /** Optional: access and refresh token lifetimes in seconds (defaults 1200 and 14 days). */
  ACCESS_TOKEN_TTL_SECONDS?: string;
  REFRESH_TOKEN_TTL_SECONDS?: string;
  /** Optional: failed logins of one user name within the window that lock it (defaults 5 in 300 s). */
  LOGIN_LOCKOUT_FAILURES?: string;
  LOGIN_LOCKOUT_WINDOW_SECONDS?: string;
}

export type Db = DrizzleD1Database<typeof schema>;

export type AppEnv = {
  Bindings: Bindings;
  Variables: { db: Db; principal: Principal; requestId: string };
};
