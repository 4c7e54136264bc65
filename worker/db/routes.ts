/**
 * @module Routes and their destinations in D1. Every write bumps the
 * `routes_table` counter in the same batch, so routers long-polling on it see
 * each change exactly once it is committed.
 */
import { and, asc, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../env";
import { routePathKey } from "../../shared/route-path";
import { isoNow, newGuid } from "../http/ids";
import { type AuditEventInput, auditEvent, auditEventIfChanged } from "./audit";
import { bumpRouteTable } from "./counters";
import { apps, routeDestinations, routes } from "./schema";
import type { Listing } from "./listing";
import { selectPage } from "./paging";
import { visibleTo } from "./roles";

export interface Destination {
  guid: string;
  appGuid: string;
  processType: string;
  port: number | null;
}

export interface Route {
  guid: string;
  host: string;
  domain: string;
  /** "" for none. */
  path: string;
  spaceGuid: string;
  destinations: Destination[];
  createdAt: string;
  updatedAt: string;
}

async function destinationsOf(db: Db, routeGuids: string[]): Promise<Map<string, Destination[]>> {
  const out = new Map<string, Destination[]>();
  if (routeGuids.length === 0) return out;
  const rows = await db.select().from(routeDestinations).where(inArray(routeDestinations.routeGuid, routeGuids))
    .orderBy(asc(routeDestinations.createdAt), sql`rowid`);
  for (const r of rows) {
    const list = out.get(r.routeGuid) ?? [];
    list.push({ guid: r.guid, appGuid: r.appGuid, processType: r.processType, port: r.port });
    out.set(r.routeGuid, list);
  }
  return out;
}

function toRoute(r: typeof routes.$inferSelect, destinations: Destination[]): Route {
  return { guid: r.guid, host: r.host, domain: r.domain, path: r.path, spaceGuid: r.spaceGuid, destinations, createdAt: r.createdAt, updatedAt: r.updatedAt };
}

/** CC's `url` of a route: `host.domain/path`. */
export function routeUrl(r: Pick<Route, "host" | "domain" | "path">): string {
  return `${r.host}.${r.domain}${r.path}`;
}

export async function getRoute(db: Db, guid: string): Promise<Route | undefined> {
  const [row] = await db.select().from(routes).where(eq(routes.guid, guid)).limit(1);
  if (!row) return undefined;
  return toRoute(row, (await destinationsOf(db, [guid])).get(guid) ?? []);
}

export interface RouteFilter extends Listing {
  hosts?: string[];
  /** Exact paths; "" is the route without one. */
  paths?: string[];
  spaceGuids?: string[];
  appGuids?: string[];
  guids?: string[];
}

export async function listRoutes(db: Db, f: RouteFilter): Promise<{ total: number; routes: Route[] }> {
  const cond = and(
    f.hosts && inArray(routes.host, f.hosts),
    f.paths && inArray(routes.path, f.paths),
    f.spaceGuids && inArray(routes.spaceGuid, f.spaceGuids),
    f.guids && inArray(routes.guid, f.guids),
    f.appGuids && inArray(routes.guid, db.select({ g: routeDestinations.routeGuid }).from(routeDestinations).where(inArray(routeDestinations.appGuid, f.appGuids))),
    visibleTo(db, f.viewer, routes.spaceGuid),
  );
  const { total, rows } = await selectPage(db, routes, cond, [asc(routes.createdAt), sql`rowid`], f);
  const dests = await destinationsOf(db, rows.map((r) => r.guid));
  return { total, routes: rows.map((r) => toRoute(r, dests.get(r.guid) ?? [])) };
}

/** Why a route was not made: its host, domain and path exist, or the host is another space's on the domain. */
export type RouteRefusal = "taken" | "reserved";

/**
 * Creates a route, or says why not. A host on the (shared) apps domain is one
 * space's, whatever the path, as CC reserves it: else another space could add
 * `/api` to it and take that part of its traffic.
 */
export async function createRoute(
  db: Db,
  input: { host: string; domain: string; path: string; spaceGuid: string },
  actor: AuditEventInput["actor"],
  now: Date = new Date(),
): Promise<Route | RouteRefusal> {
  const guid = newGuid();
  const ts = isoNow(now);
  const { host, domain, path, spaceGuid } = input;
  const [insert] = await db.batch([
    // A taken route (the same path as the routers match it) or a host another space holds makes the insert a no-op.
    db.insert(routes).select(sql`select ${guid}, ${host}, ${domain}, ${path}, ${spaceGuid}, ${ts}, ${ts}
      where not exists (select 1 from ${routes} where ${routes.host} = ${host} and ${routes.domain} = ${domain}
        and (${routes.spaceGuid} <> ${spaceGuid} or ${samePath(path)}))`)
      .onConflictDoNothing(),
    auditEventIfChanged(db, {
      type: "audit.route.create", actor, target: { guid, type: "route", name: routeUrl(input) },
      spaceGuid: input.spaceGuid, data: { request: { host: input.host, domain: input.domain, path: input.path } }, now,
    }),
    bumpRouteTable(db),
  ]);
  if (insert.meta.changes === 1) return (await getRoute(db, guid))!;
  const [same] = await db.select({ guid: routes.guid }).from(routes)
    .where(and(eq(routes.host, host), eq(routes.domain, domain), samePath(path))).limit(1);
  return same ? "taken" : "reserved";
}

/**
 * Routers match by routePathKey (lower-case, one trailing "/" dropped), so
 * `/api` and `/API/` are one route: two rows for it would leave each router
 * picking its own winner.
 */
function samePath(path: string) {
  const column = sql`lower(case when ${routes.path} like '%/' then substr(${routes.path}, 1, length(${routes.path}) - 1) else ${routes.path} end)`;
  return sql`${column} = ${routePathKey(path)}`;
}

export async function deleteRoute(db: Db, route: Route, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<void> {
  await db.batch([
    db.delete(routeDestinations).where(eq(routeDestinations.routeGuid, route.guid)),
    db.delete(routes).where(eq(routes.guid, route.guid)),
    auditEvent(db, {
      type: "audit.route.delete-request", actor, target: { guid: route.guid, type: "route", name: routeUrl(route) },
      spaceGuid: route.spaceGuid, data: { request: { recursive: true } }, now,
    }),
    bumpRouteTable(db),
  ]);
}

export interface NewDestination {
  app: { guid: string; name: string };
  processType: string;
  port: number | null;
}

/** How a mapping change was asked for: `manifestTriggered` marks one made by apply_manifest (CC's metadata). */
export interface MappingCause {
  actor: AuditEventInput["actor"];
  manifestTriggered?: boolean;
}

/** CC's audit.app.map-route / unmap-route event of one destination. */
function mappingEvent(type: "audit.app.map-route" | "audit.app.unmap-route", route: Route, destinationGuid: string, d: NewDestination, cause: MappingCause, now: Date): AuditEventInput {
  return {
    type, actor: cause.actor, target: { guid: d.app.guid, type: "app", name: d.app.name }, spaceGuid: route.spaceGuid, now,
    data: {
      route_guid: route.guid, app_port: d.port, route_mapping_guid: destinationGuid, destination_guid: destinationGuid,
      process_type: d.processType, weight: null, protocol: "http1", ...(cause.manifestTriggered ? { manifest_triggered: true } : {}),
    },
  };
}

/**
 * Adds destinations (an app/process pair already mapped is left as it is, as CF
 * does, and gets no event) and returns the route's destinations after. Apps
 * deleted meanwhile are skipped rather than failing the batch on the foreign key.
 */
export async function addDestinations(db: Db, route: Route, list: NewDestination[], cause: MappingCause, now: Date = new Date()): Promise<Destination[]> {
  const ts = isoNow(now);
  const inserts = list.flatMap((d) => {
    const guid = newGuid();
    return [
      db.insert(routeDestinations).select(sql`select ${guid}, ${route.guid}, ${d.app.guid}, ${d.processType}, ${d.port}, ${ts}, ${ts}
        where exists (select 1 from ${apps} where ${apps.guid} = ${d.app.guid})
          and exists (select 1 from ${routes} where ${routes.guid} = ${route.guid})`).onConflictDoNothing(),
      auditEventIfChanged(db, mappingEvent("audit.app.map-route", route, guid, d, cause, now)),
    ];
  });
  await db.batch([
    db.update(routes).set({ updatedAt: ts }).where(eq(routes.guid, route.guid)),
    bumpRouteTable(db),
    ...inserts,
  ]);
  return (await destinationsOf(db, [route.guid])).get(route.guid) ?? [];
}

/** Removes one destination; false when the route has no such destination. */
export async function removeDestination(db: Db, route: Route, destinationGuid: string, cause: MappingCause, now: Date = new Date()): Promise<boolean> {
  const d = route.destinations.find((x) => x.guid === destinationGuid);
  if (!d) return false;
  const [app] = await db.select({ name: apps.name }).from(apps).where(eq(apps.guid, d.appGuid)).limit(1);
  const [del] = await db.batch([
    db.delete(routeDestinations).where(and(eq(routeDestinations.guid, destinationGuid), eq(routeDestinations.routeGuid, route.guid))),
    auditEventIfChanged(db, mappingEvent("audit.app.unmap-route", route, destinationGuid, { app: { guid: d.appGuid, name: app?.name ?? "" }, processType: d.processType, port: d.port }, cause, now)),
    db.update(routes).set({ updatedAt: isoNow(now) }).where(eq(routes.guid, route.guid)),
    bumpRouteTable(db),
  ]);
  return del.meta.changes === 1;
}
