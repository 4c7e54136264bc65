/** @module routes, create-route, map-route, unmap-route, delete-route. */
import type { Command } from "commander";
import { ApiError } from "../api";
import { findApp, type Ctx } from "../context";
import type { Action } from "../main";

interface RouteResource {
  guid: string;
  host: string;
  url: string;
}
interface Destination {
  guid: string;
  app: { guid: string };
}

async function findRoute(ctx: Ctx, host: string): Promise<RouteResource | undefined> {
  // paths= (empty) names the route without a path.
  const routes = await ctx.api().all<RouteResource>(`/v3/routes?hosts=${encodeURIComponent(host)}&paths=`);
  return routes.find((r) => r.host === host);
}

async function mustFindRoute(ctx: Ctx, host: string): Promise<RouteResource> {
  const route = await findRoute(ctx, host);
  if (!route) throw new ApiError(404, "CF-ResourceNotFound", `Route with host '${host}' not found`);
  return route;
}

const destinations = async (ctx: Ctx, routeGuid: string) =>
  (await ctx.api().get<{ destinations: Destination[] }>(`/v3/routes/${routeGuid}/destinations`)).destinations;

/** Creates the route HOST.<apps domain> when missing and maps the app to it; returns the route (`host.domain`). */
/** The route `host` mapped to the app, made if missing; `created` says whether this call made it. */
export async function ensureRoute(ctx: Ctx, o: { host: string; appGuid: string; spaceGuid: string }): Promise<{ url: string; guid: string; created: boolean }> {
  const found = await findRoute(ctx, o.host);
  const route = found ?? (await ctx.api().post<RouteResource>("/v3/routes", { host: o.host, relationships: { space: { data: { guid: o.spaceGuid } } } }));
  const existing = await destinations(ctx, route.guid);
  if (!existing.some((d) => d.app.guid === o.appGuid)) {
    await ctx.api().post(`/v3/routes/${route.guid}/destinations`, { destinations: [{ app: { guid: o.appGuid } }] });
  }
  return { url: route.url, guid: route.guid, created: !found };
}

export function registerRoutes(program: Command, action: Action) {
  program
    .command("routes")
    .description("List routes in the target space")
    .action(action(async (ctx) => {
      const space = ctx.space();
      ctx.out.say(`Getting routes for space ${space.name}...\n`);
      const routes = await ctx.api().all<RouteResource>(`/v3/routes?space_guids=${space.guid}`);
      const rows = [];
      const data = [];
      for (const r of routes) {
        const dests = await destinations(ctx, r.guid);
        const names = [];
        for (const d of dests) names.push((await ctx.api().get<{ name: string }>(`/v3/apps/${d.app.guid}`)).name);
        rows.push([r.host, r.url, names.join(", ")]);
        data.push({ ...r, apps: names });
      }
      if (routes.length === 0) ctx.out.say("No routes found.");
      else ctx.out.table(["host", "url", "apps"], rows);
      ctx.out.data(data);
    }));

  program
    .command("create-route <host>")
    .description("Create a route HOST.<apps domain> in the target space")
    .action(action(async (ctx, host: string) => {
      const route = await ctx.api().post<RouteResource>("/v3/routes", { host, relationships: { space: { data: { guid: ctx.space().guid } } } });
      ctx.out.say(`Creating route ${route.url}...\nOK`);
      ctx.out.data(route);
    }));

  program
    .command("map-route <app> <host>")
    .description("Map a route to an app (creating the route when missing)")
    .action(action(async (ctx, appName: string, host: string) => {
      const app = await findApp(ctx, appName);
      const { url } = await ensureRoute(ctx, { host, appGuid: app.guid, spaceGuid: ctx.space().guid });
      ctx.out.say(`Mapping route ${url} to app ${appName}...\nOK`);
      ctx.out.data({ app: app.guid, url });
    }));

  program
    .command("unmap-route <app> <host>")
    .description("Remove a route from an app")
    .action(action(async (ctx, appName: string, host: string) => {
      const app = await findApp(ctx, appName);
      const route = await mustFindRoute(ctx, host);
      const dest = (await destinations(ctx, route.guid)).find((d) => d.app.guid === app.guid);
      if (dest) await ctx.api().delete(`/v3/routes/${route.guid}/destinations/${dest.guid}`);
      ctx.out.say(`Removing route ${route.url} from app ${appName}...\nOK`);
      ctx.out.data({ app: app.guid, route: route.guid, unmapped: Boolean(dest) });
    }));

  program
    .command("delete-route <host>")
    .description("Delete a route")
    .action(action(async (ctx, host: string) => {
      const route = await mustFindRoute(ctx, host);
      await ctx.api().delete(`/v3/routes/${route.guid}`);
      ctx.out.say(`Deleting route ${route.url}...\nOK`);
      ctx.out.data({ deleted: route.guid });
    }));
}
