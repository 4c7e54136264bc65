/**
 * @module Space roles. Berth has one role type, `space_developer`: a member sees
 * and changes the apps of that space (DESIGN § Auth).
 */
import { and, asc, desc, eq, inArray, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Db } from "../env";
import { isoNow, newGuid } from "../http/ids";
import { type AuditEventInput, writeAudited } from "./audit";
import { type Page, selectPage } from "./paging";
import { roles } from "./schema";

export const ROLE_TYPES = ["space_developer"] as const;
export type RoleType = (typeof ROLE_TYPES)[number];

export interface Role {
  guid: string;
  type: (typeof roles.$inferSelect)["type"];
  userGuid: string;
  organizationGuid: string;
  spaceGuid: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Who is listing: admins see everything, a developer what belongs to their spaces. */
export interface Viewer {
  guid: string;
  admin: boolean;
}

/** A subquery, not a list of guids: a developer may belong to more spaces than D1 allows bound parameters. */
export const memberSpaceGuids = (db: Db, userGuid: string) =>
  db.select({ guid: roles.spaceGuid }).from(roles).where(eq(roles.userGuid, userGuid));

/** A condition restricting `spaceColumn` to the viewer's spaces; none for admins. */
export function visibleTo(db: Db, viewer: Viewer, spaceColumn: SQLiteColumn): SQL | undefined {
  return viewer.admin ? undefined : inArray(spaceColumn, memberSpaceGuids(db, viewer.guid));
}

/** Creates a role; null when the user already has it in that space. Callers check that both exist. */
export async function createRole(
  db: Db,
  input: { type: RoleType; user: { guid: string; name: string }; space: { guid: string; name: string; organizationGuid: string } },
  actor: AuditEventInput["actor"],
  now: Date = new Date(),
): Promise<Role | null> {
  const at = isoNow(now);
  const role: Role = {
    guid: newGuid(), type: input.type, userGuid: input.user.guid, organizationGuid: input.space.organizationGuid, spaceGuid: input.space.guid,
    createdAt: at, updatedAt: at,
  };
  const created = await writeAudited(db, db.insert(roles).values(role).onConflictDoNothing(), {
    type: "audit.role.create",
    actor,
    target: { guid: role.guid, type: "role", name: input.type },
    spaceGuid: input.space.guid,
    data: { user: input.user, space: { guid: input.space.guid, name: input.space.name } },
    now,
  });
  return created ? role : null;
}

export async function getRole(db: Db, guid: string, viewer: Viewer): Promise<Role | undefined> {
  const [row] = await db.select().from(roles).where(and(eq(roles.guid, guid), visibleTo(db, viewer, roles.spaceGuid))).limit(1);
  return row;
}

export interface RoleListQuery extends Page {
  types?: RoleType[];
  userGuids?: string[];
  spaceGuids?: string[];
  orderBy: "created_at" | "-created_at";
}

export async function listRoles(db: Db, viewer: Viewer, q: RoleListQuery): Promise<{ total: number; roles: Role[] }> {
  const conds: (SQL | undefined)[] = [visibleTo(db, viewer, roles.spaceGuid)];
  if (q.types) conds.push(inArray(roles.type, q.types));
  if (q.userGuids) conds.push(inArray(roles.userGuid, q.userGuids));
  if (q.spaceGuids) conds.push(inArray(roles.spaceGuid, q.spaceGuids));
  const cond = and(...conds);
  const dir = q.orderBy.startsWith("-") ? desc : asc;
  const { total, rows } = await selectPage(db, roles, cond, [dir(roles.createdAt), dir(roles.guid)], q);
  return { total, roles: rows };
}
