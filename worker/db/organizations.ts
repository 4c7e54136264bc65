/**
 * @module Organizations: the top of CF's tenancy. Spaces belong to one; names are
 * unique across the platform. The migration that introduced them moved every
 * existing space into the organization named "default" (DEFAULT_ORGANIZATION_GUID).
 */
import { and, asc, desc, eq, inArray, type SQL } from "drizzle-orm";
import type { Db } from "../env";
import { isoNow, newGuid } from "../http/ids";
import { type AuditEventInput, writeAudited } from "./audit";
import { type Page, selectPage } from "./paging";
import { memberOrganizationGuids, type Viewer } from "./roles";
import { organizations } from "./schema";

/** The organization migrations/0001 made for the spaces that existed before organizations. */
export const DEFAULT_ORGANIZATION_GUID = "8e0c5a1e-5b1a-4d6e-9c3f-defa0170a000";

export interface Organization {
  guid: string;
  name: string;
  suspended: boolean;
  /** Its own organization quota; null: the default one applies. */
  quotaGuid: string | null;
  createdAt: string;
  updatedAt: string;
}

export function organizationVisibleTo(db: Db, viewer: Viewer): SQL | undefined {
  return viewer.admin ? undefined : inArray(organizations.guid, memberOrganizationGuids(db, viewer.guid));
}

/** Creates an organization; null when the name is taken. */
export async function createOrganization(
  db: Db,
  name: string,
  actor: AuditEventInput["actor"],
  now: Date = new Date(),
): Promise<Organization | null> {
  const at = isoNow(now);
  const org: Organization = { guid: newGuid(), name, suspended: false, quotaGuid: null, createdAt: at, updatedAt: at };
  const created = await writeAudited(db, db.insert(organizations).values(org).onConflictDoNothing(), {
    type: "audit.organization.create",
    actor,
    target: { guid: org.guid, type: "organization", name },
    data: { request: { name } },
    now,
  });
  return created ? org : null;
}

/** The organization if it exists and the viewer may see it (404 to outsiders, as CC). */
export async function getOrganization(db: Db, guid: string, viewer: Viewer): Promise<Organization | undefined> {
  const [row] = await db.select().from(organizations).where(and(eq(organizations.guid, guid), organizationVisibleTo(db, viewer))).limit(1);
  return row;
}

export interface OrganizationListQuery extends Page {
  names?: string[];
  guids?: string[];
  orderBy: "created_at" | "-created_at" | "name" | "-name";
}

export async function listOrganizations(db: Db, viewer: Viewer, q: OrganizationListQuery): Promise<{ total: number; organizations: Organization[] }> {
  const conds: (SQL | undefined)[] = [organizationVisibleTo(db, viewer)];
  if (q.names) conds.push(inArray(organizations.name, q.names));
  if (q.guids) conds.push(inArray(organizations.guid, q.guids));
  const col = q.orderBy.endsWith("name") ? organizations.name : organizations.createdAt;
  const dir = q.orderBy.startsWith("-") ? desc : asc;
  const { total, rows } = await selectPage(db, organizations, and(...conds), [dir(col), dir(organizations.guid)], q);
  return { total, organizations: rows };
}
