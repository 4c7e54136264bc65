/**
 * @module /v3/routes: http routes `<host>.<APPS_DOMAIN>[/path]` and their
 * destinations (an app's `web` process). Every change bumps the `routes_table` counter that
 * routers long-poll on, in the same batch as the change.
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { canAccessSpace, requireUser } from "../auth/principal";
import { linkerOf, type UserPrincipal } from "../auth/scope";
import { getApp } from "../db/apps";
import { addDestinations, createRoute, deleteRoute, getRoute, listRoutes, removeDestination, type Route } from "../db/routes";
import { getSpace } from "../db/spaces";
import type { AppEnv } from "../env";
import { acceptedWithJob } from "./jobs";
import { resourceNotFound, unprocessable } from "../errors";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";
import { afterCommit } from "../http/after-commit";
import type { VersionSource } from "../scheduling/versions";
import { appsDomainGuid, presentDestinations, presentRoute } from "../presenters/routes";
import { checkRouteQuotas } from "../quotas/repo";
import { routePathProblem } from "../../shared/route-path";

/** One DNS label (RFC 1123): letters, digits and inner hyphens, at most 63. */
export const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Route edits move the routers' table and no desired state: routers are told directly. */
const ROUTES_TABLE: VersionSource[] = [{ kind: "routes_table" }];

const toOne = z.strictObject({ data: z.strictObject({ guid: z.string().min(1).max(255) }) });

const createSchema = z.strictObject({
  // Host names are case-insensitive: kept lower-case so uniqueness holds.
  host: z.string().max(63).transform((h) => h.toLowerCase()).pipe(z.string().regex(DNS_LABEL, "must be a DNS label: a-z, 0-9 and inner '-', 1 to 63 characters")),
  // Checked by routePathProblem, for CC's words.
  path: z.string().max(4096).optional(),
  relationships: z.strictObject({ space: toOne, domain: toOne.optional() }),
});

/** CC's 422 for a route that exists (with its path, when it has one). */
export function routeTaken(host: string, path: string, domain: string) {
  return unprocessable(path === ""
    ? `Route already exists with host '${host}' for domain '${domain}'.`
    : `Route already exists with host '${host}' and path '${path}' for domain '${domain}'.`);
}

const listSchema = z.strictObject({
  // The cf CLI names the domain and the path ("" for none) of the route it looks for; Berth's routes are all on the apps domain.
  domain_guids: filterList.optional(),
  paths: z.string().transform((p) => p.split(",")).optional(),
  hosts: filterList.optional(),
  space_guids: filterList.optional(),
  app_guids: filterList.optional(),
  guids: filterList.optional(),
  ...pageQuery,
});

const destinationsSchema = z.strictObject({
  destinations: z.array(z.strictObject({
    app: z.strictObject({
      guid: z.string().min(1).max(255),
      // Berth routes only web processes (the router knows no other type).
      process: z.strictObject({ type: z.literal("web", { error: "must be web" }) }).optional(),
    }),
    port: z.number().int().min(1).max(65535).optional(),
    protocol: z.literal("http1", { error: "must be http1" }).optional(),
  })).min(1).max(50),
});

async function reachableRoute(c: Context<AppEnv>): Promise<{ principal: UserPrincipal; route: Route }> {
  const principal = requireUser(c);
  const route = await getRoute(c.var.db, c.req.param("guid") ?? "");
  if (!route || !(await canAccessSpace(c, route.spaceGuid))) throw resourceNotFound("Route");
  return { principal, route };
}

export const routesApi = new Hono<AppEnv>();

routesApi.post("/", async (c) => {
  const principal = requireUser(c);
  const body = await parseJson(c, createSchema);
  // The request's own rules come first, as CC's RouteCreateMessage checks them before any lookup.
  const path = body.path ?? "";
  const pathProblem = routePathProblem(path);
  if (pathProblem) throw unprocessable(pathProblem);
  const domain = c.env.APPS_DOMAIN;
  const domainGuid = await appsDomainGuid(domain);
  const spaceGuid = body.relationships.space.data.guid;
  if (!(await getSpace(c.var.db, spaceGuid, principal)) || !(await canAccessSpace(c, spaceGuid))) throw unprocessable("Invalid space. Ensure that the space exists and you have access to it.");
  if (body.relationships.domain && body.relationships.domain.data.guid !== domainGuid) {
    throw unprocessable("Invalid domain. Ensure that the domain exists and you have access to it.");
  }
  if (body.host.length + 1 + domain.length > 253) throw unprocessable(`host: '${body.host}.${domain}' is longer than 253 characters`);
  await checkRouteQuotas(c.var.db, spaceGuid);
  const route = await createRoute(c.var.db, { host: body.host, domain, path, spaceGuid }, principal);
  if (route === "taken") throw routeTaken(body.host, path, domain);
  if (route === "reserved") throw unprocessable("Routes for this host and domain have been reserved for another space.");
  return c.json(presentRoute(route, domainGuid, linkerOf(c)), 201);
});

routesApi.get("/", async (c) => {
  const principal = requireUser(c);
  const q = parseQuery(c, listSchema);
  const { total, routes } = await listRoutes(c.var.db, {
    hosts: q.hosts?.map((h) => h.toLowerCase()), paths: q.paths, spaceGuids: q.space_guids, appGuids: q.app_guids, guids: q.guids,
    viewer: principal, page: q.page, perPage: q.per_page,
  });
  const domainGuid = await appsDomainGuid(c.env.APPS_DOMAIN);
  const l = linkerOf(c);
  if (q.domain_guids && !q.domain_guids.includes(domainGuid)) return c.json(paginated(c.req.url, q, 0, []));
  return c.json(paginated(c.req.url, q, total, routes.map((r) => presentRoute(r, domainGuid, l))));
});

routesApi.get("/:guid", async (c) => {
  const { route } = await reachableRoute(c);
  return c.json(presentRoute(route, await appsDomainGuid(c.env.APPS_DOMAIN), linkerOf(c)));
});

routesApi.delete("/:guid", async (c) => {
  const { principal, route } = await reachableRoute(c);
  await deleteRoute(c.var.db, route, principal);
  afterCommit(c, `delete route ${route.guid}`, { sources: ROUTES_TABLE });
  return acceptedWithJob(c, "route.delete", principal);
});

routesApi.get("/:guid/destinations", async (c) => {
  const { route } = await reachableRoute(c);
  return c.json(presentDestinations(route, linkerOf(c)));
});

routesApi.post("/:guid/destinations", async (c) => {
  const { principal, route } = await reachableRoute(c);
  const body = await parseJson(c, destinationsSchema);
  const guids = [...new Set(body.destinations.map((d) => d.app.guid))];
  const missing: string[] = [];
  const names = new Map<string, string>();
  for (const guid of guids) {
    const app = await getApp(c.var.db, guid);
    if (!app || !(await canAccessSpace(c, app.spaceGuid))) missing.push(guid);
    else if (app.spaceGuid !== route.spaceGuid) throw unprocessable("Routes destinations must be in either the route's space or the route's shared spaces");
    else names.set(guid, app.name);
  }
  if (missing.length > 0) throw unprocessable(`App(s) with guid(s) ${missing.map((g) => `"${g}"`).join(", ")} do not exist or you do not have access.`);
  const destinations = await addDestinations(c.var.db, route, body.destinations.map((d) => ({
    app: { guid: d.app.guid, name: names.get(d.app.guid)! }, processType: d.app.process?.type ?? "web", port: d.port ?? null,
  })), { actor: principal });
  afterCommit(c, `map route ${route.guid}`, { sources: ROUTES_TABLE });
  return c.json(presentDestinations({ ...route, destinations }, linkerOf(c)));
});

routesApi.delete("/:guid/destinations/:destination", async (c) => {
  const { principal, route } = await reachableRoute(c);
  const removed = await removeDestination(c.var.db, route, c.req.param("destination"), { actor: principal });
  if (!removed) throw unprocessable("Unable to unmap route from destination. Ensure the route has a destination with this guid.");
  afterCommit(c, `unmap route ${route.guid}`, { sources: ROUTES_TABLE });
  return c.body(null, 204);
});
