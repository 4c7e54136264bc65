/**
 * @module CF-style audit events. `auditEvent` builds an insert to put in the same
 * `db.batch([...])` as the change it records, so the event exists exactly when
 * the change does (D1 runs a batch as one transaction).
 *
 * @example
 * await db.batch([db.insert(apps).values(row), auditEvent(db, {
 *   type: "audit.app.create", actor: c.var.principal,
 *   target: { guid: row.guid, type: "app", name: row.name }, spaceGuid: row.spaceGuid, data: { request: body },
 * })]);
 */
import { and, desc, eq, inArray, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { CellClaim, Principal } from "../auth/principal";
import type { Db } from "../env";
import { newGuid, isoNow } from "../http/ids";
import { type Page, selectPage } from "./paging";
import { type Viewer, visibleTo } from "./roles";
import { auditEvents } from "./schema";

/** CC's audit event types Berth records; the scheduler's own are named after CF's app events. */
export type AuditEventType =
  | "audit.user.create"
  | "audit.organization.create"
  | "audit.space.create"
  | "audit.role.create"
  | "audit.role.delete"
  | "audit.user.delete-request"
  | "audit.organization.delete-request"
  | "audit.space.delete-request"
  | "audit.feature_flag.update"
  | "audit.docker_registry_access.update"
  | "audit.app.create"
  | "audit.app.update"
  | "audit.app.apply_manifest"
  | "audit.app.delete-request"
  | "audit.app.start"
  | "audit.app.stop"
  | "audit.app.restart"
  | "audit.app.restage"
  | "audit.app.map-route"
  | "audit.app.unmap-route"
  | "audit.app.deployment.create"
  | "audit.app.deployment.cancel"
  | "audit.app.droplet.mapped"
  | "audit.app.package.create"
  | "audit.app.build.create"
  | "audit.app.process.update"
  | "audit.app.process.scale"
  | "audit.app.process.crash"
  | "audit.route.create"
  | "audit.route.delete-request"
  | "app.crash"
  | "app.placement_failed"
  | "app.instance_lost"
  | "app.instances_placed"
  | "app.instances_replaced"
  | "app.instances_stopped";

/** Who did it, in CC's `actor` shape. The scheduler acts as `SYSTEM_ACTOR`. */
export interface Actor {
  guid: string;
  type: "user" | "cell" | "router" | "system" | "v3-process";
  name: string;
}

export const SYSTEM_ACTOR: Actor = { guid: "system", type: "system", name: "berth-scheduler" };

export interface AuditEventInput {
  type: AuditEventType;
  actor: Actor | Exclude<Principal, { kind: "anonymous" } | CellClaim>;
  target: { guid: string; type: string; name: string };
  spaceGuid?: string | null;
  data: Record<string, unknown>;
  /** The clock, for tests; defaults to now. */
  now?: Date;
}

export function actorOf(actor: AuditEventInput["actor"]): Actor {
  return "kind" in actor ? { guid: actor.guid, type: actor.kind, name: actor.name } : actor;
}

function row(event: AuditEventInput): typeof auditEvents.$inferInsert {
  const actor = actorOf(event.actor);
  return {
    guid: newGuid(),
    type: event.type,
    actorGuid: actor.guid,
    actorType: actor.type,
    actorName: actor.name,
    targetGuid: event.target.guid,
    targetType: event.target.type,
    targetName: event.target.name,
    spaceGuid: event.spaceGuid ?? null,
    data: event.data,
    createdAt: isoNow(event.now),
  };
}

/** An insert statement for `db.batch`, or to `await` on its own. */
export function auditEvent(db: Db, event: AuditEventInput) {
  return db.insert(auditEvents).values(row(event));
}

/**
 * An insert that takes effect only if the statement just before it in the same
 * batch changed a row (SQLite `changes()`): pair it with a conditional write so a
 * lost compare-and-set leaves no event behind.
 */
export function auditEventIfChanged(db: Db, event: AuditEventInput) {
  return auditEventWhere(db, event, sql`changes() = 1`);
}

/** An insert that takes effect only where `condition` (SQL, read when the statement runs) holds. */
export function auditEventWhere(db: Db, event: AuditEventInput, condition: SQL) {
  const r = row(event);
  return db.insert(auditEvents).select(
    sql`select ${r.guid}, ${r.type}, ${r.actorGuid}, ${r.actorType}, ${r.actorName}, ${r.targetGuid}, ${r.targetType}, ${r.targetName}, ${r.spaceGuid}, ${JSON.stringify(r.data)}, ${r.createdAt} where ${condition}`,
  );
}

/**
 * Runs a conditional write (e.g. an insert with ON CONFLICT DO NOTHING) and its
 * event as one batch; the event is kept only if the write changed a row.
 * Returns whether it did.
 */
export async function writeAudited(db: Db, write: BatchItem<"sqlite">, event: AuditEventInput): Promise<boolean> {
  const [result]: [D1Result, ...unknown[]] = await db.batch([write, auditEventIfChanged(db, event)]);
  return result.meta.changes === 1;
}

export interface AuditEvent {
  guid: string;
  type: string;
  actor: { guid: string; type: string; name: string };
  target: { guid: string; type: string; name: string };
  spaceGuid: string | null;
  data: Record<string, unknown>;
  createdAt: string;
}

export interface AuditEventFilter extends Page {
  types?: string[];
  targetGuids?: string[];
  spaceGuids?: string[];
  /** Newest first when true (CC's `order_by=-created_at`). */
  descending: boolean;
}

function where(db: Db, viewer: Viewer, f: AuditEventFilter): SQL | undefined {
  // Events with no space (flags, users, registry access) are for admins only.
  const conds: (SQL | undefined)[] = [visibleTo(db, viewer, auditEvents.spaceGuid)];
  if (f.types) conds.push(inArray(auditEvents.type, f.types));
  if (f.targetGuids) conds.push(inArray(auditEvents.targetGuid, f.targetGuids));
  if (f.spaceGuids) conds.push(inArray(auditEvents.spaceGuid, f.spaceGuids));
  return and(...conds);
}

/** One page of events and the total count matching the filter. */
export async function listAuditEvents(db: Db, viewer: Viewer, f: AuditEventFilter): Promise<{ total: number; events: AuditEvent[] }> {
  const cond = where(db, viewer, f);
  // created_at is to the second: the rowid keeps insertion order within a second.
  const order = f.descending ? [desc(auditEvents.createdAt), sql`rowid desc`] : [auditEvents.createdAt, sql`rowid`];
  const { total, rows } = await selectPage(db, auditEvents, cond, order, f);
  return { total, events: rows.map(toEvent) };
}

export async function getAuditEvent(db: Db, viewer: Viewer, guid: string): Promise<AuditEvent | undefined> {
  const [r] = await db.select().from(auditEvents).where(and(eq(auditEvents.guid, guid), visibleTo(db, viewer, auditEvents.spaceGuid))).limit(1);
  return r && toEvent(r);
}

function toEvent(r: typeof auditEvents.$inferSelect): AuditEvent {
  return {
    guid: r.guid,
    type: r.type,
    actor: { guid: r.actorGuid, type: r.actorType, name: r.actorName },
    target: { guid: r.targetGuid, type: r.targetType, name: r.targetName },
    spaceGuid: r.spaceGuid,
    data: r.data,
    createdAt: r.createdAt,
  };
}
