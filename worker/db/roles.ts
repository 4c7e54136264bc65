/**
 * @module CF's roles: organization roles (no space) and space roles (naming
 * their space and its organization). What each may do is auth/permissions.ts;
 * here is who holds what, and what a viewer may see of it.
 */
import { and, asc, desc, eq, inArray, isNotNull, isNull, or, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Db } from "../env";
import { isoNow, newGuid } from "../http/ids";
import { type AuditEventInput, auditEvent, writeAudited } from "./audit";
import { type Page, selectPage } from "./paging";
import { ORGANIZATION_ROLE_TYPES, roles, SPACE_ROLE_TYPES, spaces } from "./schema";

export const ROLE_TYPES = [...ORGANIZATION_ROLE_TYPES, ...SPACE_ROLE_TYPES] as const;
export type RoleType = (typeof ROLE_TYPES)[number];

export type Role = typeof roles.$inferSelect;

/** Who is listing: admins see everything, anyone else what belongs to their organizations and spaces. */
export interface Viewer {
  guid: string;
  admin: boolean;
}

/** Spaces the user holds a role in (subqueries, not guid lists: D1 caps bound parameters at 100). */
const spacesWithRole = (db: Db, userGuid: string) =>
  db.select({ guid: roles.spaceGuid }).from(roles).where(and(eq(roles.userGuid, userGuid), isNotNull(roles.spaceGuid)));

/** Every space of the organizations the user manages. */
const spacesOfManagedOrgs = (db: Db, userGuid: string) =>
  db.select({ guid: spaces.guid }).from(spaces).where(inArray(spaces.organizationGuid,
    db.select({ guid: roles.organizationGuid }).from(roles).where(and(eq(roles.userGuid, userGuid), eq(roles.type, "organization_manager"), isNull(roles.spaceGuid)))));

/** Organizations where the user holds any role, of the organization or of one of its spaces. */
export const memberOrganizationGuids = (db: Db, userGuid: string) =>
  db.select({ guid: roles.organizationGuid }).from(roles).where(eq(roles.userGuid, userGuid));

/** A condition restricting `spaceColumn` to the spaces the viewer can see (CC: a role there, or managing its organization); none for admins. */
export function visibleTo(db: Db, viewer: Viewer, spaceColumn: SQLiteColumn): SQL | undefined {
  return viewer.admin ? undefined : or(inArray(spaceColumn, spacesWithRole(db, viewer.guid)), inArray(spaceColumn, spacesOfManagedOrgs(db, viewer.guid)));
}

/** Organization roles are seen by the organization's members; space roles by whoever sees the space. */
function roleVisibleTo(db: Db, viewer: Viewer): SQL | undefined {
  if (viewer.admin) return undefined;
  return or(and(isNull(roles.spaceGuid), inArray(roles.organizationGuid, memberOrganizationGuids(db, viewer.guid))), visibleTo(db, viewer, roles.spaceGuid));
}

export interface RoleInput {
  type: RoleType;
  user: { guid: string; name: string };
  organization: { guid: string; name: string };
  /** Set for space roles. */
  space?: { guid: string; name: string };
}

/** Creates a role; null when the user already has it there. Callers check that user, organization and space exist. */
export async function createRole(db: Db, input: RoleInput, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<Role | null> {
  const at = isoNow(now);
  const role: Role = {
    guid: newGuid(), type: input.type, userGuid: input.user.guid, organizationGuid: input.organization.guid, spaceGuid: input.space?.guid ?? null,
    createdAt: at, updatedAt: at,
  };
  const created = await writeAudited(db, db.insert(roles).values(role).onConflictDoNothing(), {
    type: "audit.role.create",
    actor,
    target: { guid: role.guid, type: "role", name: input.type },
    spaceGuid: input.space?.guid ?? null,
    data: { user: input.user, organization: input.organization, ...(input.space ? { space: input.space } : {}) },
    now,
  });
  return created ? role : null;
}

export async function deleteRole(db: Db, role: Role, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<void> {
  await db.batch([
    db.delete(roles).where(eq(roles.guid, role.guid)),
    auditEvent(db, { type: "audit.role.delete", actor, target: { guid: role.guid, type: "role", name: role.type }, spaceGuid: role.spaceGuid, data: { user_guid: role.userGuid }, now }),
  ]);
}

/** CC's user delete: every role of the user goes. */
export async function deleteUserRoles(db: Db, user: { guid: string; name: string }, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<void> {
  await db.batch([
    db.delete(roles).where(eq(roles.userGuid, user.guid)),
    auditEvent(db, { type: "audit.user.delete-request", actor, target: { guid: user.guid, type: "user", name: user.name }, data: {}, now }),
  ]);
}

/** Whether the user holds an organization role there (CC requires one before any space role in it). */
export async function hasOrgRole(db: Db, userGuid: string, orgGuid: string): Promise<boolean> {
  const [row] = await db.select({ guid: roles.guid }).from(roles)
    .where(and(eq(roles.userGuid, userGuid), eq(roles.organizationGuid, orgGuid), isNull(roles.spaceGuid))).limit(1);
  return row !== undefined;
}

/** Whether the user holds a role in any space of the organization. */
export async function hasSpaceRoleInOrg(db: Db, userGuid: string, orgGuid: string): Promise<boolean> {
  const [row] = await db.select({ guid: roles.guid }).from(roles)
    .where(and(eq(roles.userGuid, userGuid), eq(roles.organizationGuid, orgGuid), isNotNull(roles.spaceGuid))).limit(1);
  return row !== undefined;
}

export async function getRole(db: Db, guid: string, viewer: Viewer): Promise<Role | undefined> {
  const [row] = await db.select().from(roles).where(and(eq(roles.guid, guid), roleVisibleTo(db, viewer))).limit(1);
  return row;
}

export interface RoleListQuery extends Page {
  types?: RoleType[];
  userGuids?: string[];
  spaceGuids?: string[];
  organizationGuids?: string[];
  orderBy: "created_at" | "-created_at";
}

export async function listRoles(db: Db, viewer: Viewer, q: RoleListQuery): Promise<{ total: number; roles: Role[] }> {
  const conds: (SQL | undefined)[] = [roleVisibleTo(db, viewer)];
  if (q.types) conds.push(inArray(roles.type, q.types));
  if (q.userGuids) conds.push(inArray(roles.userGuid, q.userGuids));
  if (q.spaceGuids) conds.push(inArray(roles.spaceGuid, q.spaceGuids));
  // CC's organization_guids filter names organization roles only.
  if (q.organizationGuids) conds.push(and(inArray(roles.organizationGuid, q.organizationGuids), isNull(roles.spaceGuid)));
  const dir = q.orderBy.startsWith("-") ? desc : asc;
  const { total, rows } = await selectPage(db, roles, and(...conds), [dir(roles.createdAt), dir(roles.guid)], q);
  return { total, roles: rows };
}
