/** @module Bindings and per-request variables of the control plane Worker. */
import type { DrizzleD1Database } from "drizzle-orm/d1";
import type * as schema from "./db/schema";
import type { Principal } from "./auth/principal";

export interface Bindings {
  DB: D1Database;
  CELLS: DurableObjectNamespace;
  SCHEDULER: DurableObjectNamespace;
  STAGER: DurableObjectNamespace;
  APPS_DOMAIN: string;
  LONG_POLL_HOLD_MS: string;
  /** Cell presence TTL in ms (Diego: 15 s); unset means the default. */
  HEARTBEAT_TTL_MS?: string;
  /** Secret: the bootstrap admin token. */
  ADMIN_TOKEN: string;
  /** Secret: 32 bytes, base64; AES-GCM key for registry passwords at rest. */
  ENCRYPTION_KEY: string;
}

export type Db = DrizzleD1Database<typeof schema>;

export type AppEnv = {
  Bindings: Bindings;
  Variables: { db: Db; principal: Principal; requestId: string };
};
