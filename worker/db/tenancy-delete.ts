/**
 * @module CC's recursive deletes of a space or an organization: every app (its
 * instances stop through convergence, as for `cf delete`), every route, the
 * spaces, and with them their roles (ON DELETE CASCADE). Each app and route
 * goes through its own delete, so its audit event and route-table bump are
 * the usual ones.
 */
import { eq } from "drizzle-orm";
import type { Db } from "../env";
import type { VersionSource } from "../scheduling/versions";
import { deleteApp, getApp } from "./apps";
import { type AuditEventInput, auditEvent } from "./audit";
import { deleteRoute } from "./routes";
import { apps, organizations, routes, spaces } from "./schema";

/** Returns the version sources the deletes moved, for the caller's afterCommit. */
export async function deleteSpaceTree(db: Db, space: { guid: string; name: string }, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<VersionSource[]> {
  const sources: VersionSource[] = [{ kind: "routes_table" }];
  for (const { guid } of await db.select({ guid: apps.guid }).from(apps).where(eq(apps.spaceGuid, space.guid))) {
    const app = await getApp(db, guid);
    if (app) sources.push(...(await deleteApp(db, app, actor, now)));
  }
  for (const r of await db.select().from(routes).where(eq(routes.spaceGuid, space.guid))) await deleteRoute(db, { ...r, destinations: [] }, actor, now);
  await db.batch([
    db.delete(spaces).where(eq(spaces.guid, space.guid)),
    auditEvent(db, { type: "audit.space.delete-request", actor, target: { guid: space.guid, type: "space", name: space.name }, spaceGuid: space.guid, data: { request: { recursive: true } }, now }),
  ]);
  return sources;
}

export async function deleteOrganizationTree(db: Db, org: { guid: string; name: string }, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<VersionSource[]> {
  const sources: VersionSource[] = [];
  for (const space of await db.select({ guid: spaces.guid, name: spaces.name }).from(spaces).where(eq(spaces.organizationGuid, org.guid))) {
    sources.push(...(await deleteSpaceTree(db, space, actor, now)));
  }
  await db.batch([
    db.delete(organizations).where(eq(organizations.guid, org.guid)),
    auditEvent(db, { type: "audit.organization.delete-request", actor, target: { guid: org.guid, type: "organization", name: org.name }, data: { request: { recursive: true } }, now }),
  ]);
  return sources;
}
