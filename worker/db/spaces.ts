/** @module Spaces: an organization is split into spaces that scope apps and access. */
import { and, asc, desc, eq, inArray, type SQL } from "drizzle-orm";
import type { Db } from "../env";
import { isoNow, newGuid } from "../http/ids";
import { type AuditEventInput, writeAudited } from "./audit";
import { type Page, selectPage } from "./paging";
import { type Viewer, visibleTo } from "./roles";
import { spaces } from "./schema";

export interface Space {
  guid: string;
  name: string;
  organizationGuid: string;
  createdAt: string;
  updatedAt: string;
}

/** Creates a space in an organization the caller checked exists; null when the name is taken there. */
export async function createSpace(
  db: Db,
  input: { name: string; organization: { guid: string; name: string } },
  actor: AuditEventInput["actor"],
  now: Date = new Date(),
): Promise<Space | null> {
  const at = isoNow(now);
  const name = input.name;
  const space: Space = { guid: newGuid(), name, organizationGuid: input.organization.guid, createdAt: at, updatedAt: at };
  const created = await writeAudited(db, db.insert(spaces).values(space).onConflictDoNothing(), {
    type: "audit.space.create",
    actor,
    target: { guid: space.guid, type: "space", name },
    spaceGuid: space.guid,
    data: { request: { name, organization: input.organization } },
    now,
  });
  return created ? space : null;
}

/** The space if it exists and the viewer may see it (CF answers 404 to outsiders). */
export async function getSpace(db: Db, guid: string, viewer: Viewer): Promise<Space | undefined> {
  const [row] = await db.select().from(spaces).where(and(eq(spaces.guid, guid), visibleTo(db, viewer, spaces.guid))).limit(1);
  return row;
}

export interface SpaceListQuery extends Page {
  names?: string[];
  guids?: string[];
  organizationGuids?: string[];
  orderBy: "created_at" | "-created_at" | "name" | "-name";
}

export async function listSpaces(db: Db, viewer: Viewer, q: SpaceListQuery): Promise<{ total: number; spaces: Space[] }> {
  const conds: (SQL | undefined)[] = [visibleTo(db, viewer, spaces.guid)];
  if (q.names) conds.push(inArray(spaces.name, q.names));
  if (q.guids) conds.push(inArray(spaces.guid, q.guids));
  if (q.organizationGuids) conds.push(inArray(spaces.organizationGuid, q.organizationGuids));
  const cond = and(...conds);
  const col = q.orderBy.endsWith("name") ? spaces.name : spaces.createdAt;
  const dir = q.orderBy.startsWith("-") ? desc : asc;
  const { total, rows } = await selectPage(db, spaces, cond, [dir(col), dir(spaces.guid)], q);
  return { total, spaces: rows };
}
