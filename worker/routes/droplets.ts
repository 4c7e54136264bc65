/**
 * @module /v3/droplets and `/v3/apps/:guid/droplets` (`appDroplets`): staged
 * Docker droplets. A developer sees only their spaces' droplets; others' are
 * 404, as if missing (CF).
 */
import { Hono } from "hono";
import { z } from "zod";
import { canAccessSpace, requireUser } from "../auth/principal";
import { linkerOf, reachableApp } from "../auth/scope";
import { getDroplet, listDroplets } from "../db/droplets";
import { getPackage } from "../db/packages";
import type { AppEnv } from "../env";
import { resourceNotFound } from "../errors";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseQuery } from "../http/validate";
import { presentDroplet } from "../presenters/droplets";

const listFilters = { guids: filterList.optional(), states: filterList.optional(), ...pageQuery };
const listSchema = z.strictObject({ app_guids: filterList.optional(), ...listFilters });
const appListSchema = z.strictObject({ ...listFilters, current: z.enum(["true", "false"]).optional() });

export const droplets = new Hono<AppEnv>();

droplets.get("/", async (c) => {
  const principal = requireUser(c);
  const q = parseQuery(c, listSchema);
  const { total, droplets: rows } = await listDroplets(c.var.db, {
    appGuids: q.app_guids, guids: q.guids, states: q.states, viewer: principal, page: q.page, perPage: q.per_page,
  });
  const l = linkerOf(c);
  return c.json(paginated(c.req.url, q, total, rows.map((d) => presentDroplet(d, l))));
});

droplets.get("/:guid", async (c) => {
  const principal = requireUser(c);
  const found = await getDroplet(c.var.db, c.req.param("guid"));
  if (!found || !(await canAccessSpace(c, found.spaceGuid))) throw resourceNotFound("Droplet");
  return c.json(presentDroplet(found.droplet, linkerOf(c)));
});

/**
 * `/v3/packages/:guid/droplets`, mounted beside the packages routes: the
 * package's droplets (the cf CLI's restart asks whether the newest package has
 * a STAGED one before it decides to stage).
 */
export const packageDroplets = new Hono<AppEnv>();

packageDroplets.get("/:guid/droplets", async (c) => {
  const principal = requireUser(c);
  const pkg = await getPackage(c.var.db, c.req.param("guid"));
  if (!pkg || !(await canAccessSpace(c, pkg.spaceGuid))) throw resourceNotFound("Package");
  const q = parseQuery(c, z.strictObject(listFilters));
  const { total, droplets: rows } = await listDroplets(c.var.db, {
    packageGuids: [pkg.guid], guids: q.guids, states: q.states, viewer: principal, page: q.page, perPage: q.per_page,
  });
  const l = linkerOf(c);
  return c.json(paginated(c.req.url, q, total, rows.map((d) => presentDroplet(d, l))));
});

/** `/v3/apps/:guid/droplets`, mounted beside the apps routes; `current=true` keeps only the current droplet (CC). */
export const appDroplets = new Hono<AppEnv>();

appDroplets.get("/:guid/droplets", async (c) => {
  const { principal, app } = await reachableApp(c, c.req.param("guid"));
  const q = parseQuery(c, appListSchema);
  const guids = q.current === "true" ? [app.currentDropletGuid ?? ""] : q.guids;
  const { total, droplets: rows } = await listDroplets(c.var.db, {
    appGuids: [app.guid], guids, states: q.states, viewer: principal, page: q.page, perPage: q.per_page,
  });
  const l = linkerOf(c);
  return c.json(paginated(c.req.url, q, total, rows.map((d) => presentDroplet(d, l))));
});
