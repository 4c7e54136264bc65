/**
 * @module `/v3/service_route_bindings`: Berth has no services, so no route is
 * bound to one; `cf routes` lists the bindings of the routes it shows.
 */
import { Hono } from "hono";
import { requireUser } from "../auth/principal";
import type { AppEnv } from "../env";
import { paginated } from "../http/pagination";
import { pageQuery, parseQuery } from "../http/validate";
import { z } from "zod";
import { filterList } from "../http/list-query";

const listSchema = z.strictObject({ route_guids: filterList.optional(), service_instance_guids: filterList.optional(), include: z.string().optional(), ...pageQuery });

export const serviceRouteBindingsApi = new Hono<AppEnv>();

serviceRouteBindingsApi.get("/", (c) => {
  requireUser(c);
  const q = parseQuery(c, listSchema);
  return c.json(paginated(c.req.url, q, 0, []));
});
