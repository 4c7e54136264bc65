/**
 * @module Feature flags as CC keeps them: every flag has a default
 * (CCNG app/models/runtime/feature_flag.rb DEFAULT_FLAGS); a row exists only
 * once an admin has set it, so `updated_at` is null until then.
 *
 * @example
 * await requireFeatureEnabled(c.var.db, "diego_docker"); // 403 CF-FeatureDisabled when off, admins included
 */
import { and, eq, isNull, sql, type SQL } from "drizzle-orm";
import type { Db } from "../env";
import { featureDisabled } from "../errors";
import { isoNow } from "../http/ids";
import { type AuditEventInput, auditEventIfChanged } from "./audit";
import { retryCompareAndSet } from "./compare-and-set";
import { featureFlags } from "./schema";

/** CF's defaults. diego_docker is off, and (unlike ADMIN_SKIPPABLE flags) binds admins too. */
export const DEFAULT_FLAGS = {
  app_bits_upload: true,
  app_scaling: true,
  diego_cnb: false,
  diego_docker: false,
  env_var_visibility: true,
  hash_based_routing: false,
  hide_marketplace_from_unauthenticated_users: false,
  private_domain_creation: true,
  resource_matching: true,
  route_creation: true,
  route_sharing: false,
  service_instance_creation: true,
  service_instance_sharing: false,
  set_roles_by_username: true,
  space_developer_env_var_visibility: true,
  space_scoped_private_broker_creation: true,
  task_creation: true,
  unset_roles_by_username: true,
  user_org_creation: false,
} as const satisfies Record<string, boolean>;

export type FlagName = keyof typeof DEFAULT_FLAGS;

export const FLAG_NAMES = Object.keys(DEFAULT_FLAGS).sort() as FlagName[];

export function isFlagName(name: string): name is FlagName {
  return Object.hasOwn(DEFAULT_FLAGS, name);
}

export interface FeatureFlag {
  name: FlagName;
  enabled: boolean;
  customErrorMessage: string | null;
  /** Null until an admin sets the flag. */
  updatedAt: string | null;
}

type Row = typeof featureFlags.$inferSelect;

/** A flag's row, for a caller's batch; `flagOf` reads the answer. */
export const flagQuery = (db: Db, name: FlagName) => db.select().from(featureFlags).where(eq(featureFlags.name, name)).limit(1);

/** The flag from its row (the default when no admin ever set it). */
export function flagOf(name: FlagName, row: Row | undefined): FeatureFlag {
  return row
    ? { name, enabled: row.enabled, customErrorMessage: row.customErrorMessage, updatedAt: row.updatedAt }
    : { name, enabled: DEFAULT_FLAGS[name], customErrorMessage: null, updatedAt: null };
}

export async function getFlag(db: Db, name: FlagName): Promise<FeatureFlag> {
  const [row] = await flagQuery(db, name);
  return flagOf(name, row);
}

/** Every known flag, by name; rows for names no longer known are ignored. */
export async function listFlags(db: Db): Promise<FeatureFlag[]> {
  const rows = new Map((await db.select().from(featureFlags)).map((r) => [r.name, r]));
  return FLAG_NAMES.map((name) => flagOf(name, rows.get(name)));
}

/** Throws 403 CF-FeatureDisabled ("Feature Disabled: <custom message or name>") when the flag is off. */
export async function requireFeatureEnabled(db: Db, name: FlagName): Promise<void> {
  requireEnabled(await getFlag(db, name));
}

/** requireFeatureEnabled for a flag a caller read in its own batch. */
export function requireEnabled(flag: FeatureFlag): void {
  if (!flag.enabled) throw featureDisabled(flag.customErrorMessage ?? flag.name);
}

export interface FlagChange {
  enabled?: boolean;
  customErrorMessage?: string | null;
}

/** The flag after applying a change (pure). */
export function applyFlagChange(before: FeatureFlag, change: FlagChange, now: Date): FeatureFlag {
  return {
    name: before.name,
    enabled: change.enabled ?? before.enabled,
    customErrorMessage: change.customErrorMessage === undefined ? before.customErrorMessage : change.customErrorMessage,
    updatedAt: isoNow(now),
  };
}

/** SQL true while the stored flag still equals `before` (no row when `before` was the default). */
function unchangedSince(before: FeatureFlag): SQL | undefined {
  if (before.updatedAt === null) return sql`false`; // a row appeared since: the insert path lost the race
  return and(
    eq(featureFlags.enabled, before.enabled),
    before.customErrorMessage === null ? isNull(featureFlags.customErrorMessage) : eq(featureFlags.customErrorMessage, before.customErrorMessage),
    eq(featureFlags.updatedAt, before.updatedAt),
  );
}

/**
 * Compare-and-set of one flag plus its audit event (old → new), for one `db.batch`.
 * The write happens only if the flag is still `before`; the event only if the write did.
 */
export function flagUpdateStatements(
  db: Db,
  before: FeatureFlag,
  after: FeatureFlag,
  actor: AuditEventInput["actor"],
  now: Date,
) {
  const values = { name: after.name, enabled: after.enabled, customErrorMessage: after.customErrorMessage, updatedAt: isoNow(now) };
  const write = db
    .insert(featureFlags)
    .values(values)
    .onConflictDoUpdate({
      target: featureFlags.name,
      set: { enabled: values.enabled, customErrorMessage: values.customErrorMessage, updatedAt: values.updatedAt },
      setWhere: unchangedSince(before),
    });
  const event = auditEventIfChanged(db, {
    type: "audit.feature_flag.update",
    actor,
    target: { guid: after.name, type: "feature_flag", name: after.name },
    data: {
      old: { enabled: before.enabled, custom_error_message: before.customErrorMessage },
      new: { enabled: after.enabled, custom_error_message: after.customErrorMessage },
    },
    now,
  });
  return [write, event] as const;
}

/**
 * Sets a flag and records the change. Retries the compare-and-set when another
 * admin changed the flag in between, so the event's "old" is always the real one.
 * Each attempt reads the clock after the flag: an edit that lost and retried
 * commits after the winner, and its event must not carry an earlier time
 * (events list by time, then insertion).
 */
export async function updateFlag(
  db: Db,
  name: FlagName,
  change: FlagChange,
  actor: AuditEventInput["actor"],
  clock: () => Date = () => new Date(),
): Promise<{ before: FeatureFlag; after: FeatureFlag }> {
  return retryCompareAndSet(`feature flag ${name}`, async () => {
    const before = await getFlag(db, name);
    const now = clock();
    const after = applyFlagChange(before, change, now);
    const [write] = await db.batch(flagUpdateStatements(db, before, after, actor, now));
    return write.meta.changes === 1 ? { before, after } : null;
  });
}
