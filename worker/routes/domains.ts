/**
 * @module `/v3/domains`: Berth has one shared domain, APPS_DOMAIN, where every
 * route lives (no domains table); the cf CLI reads it for default routes,
 * `cf routes`, `cf domains` and route flags.
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireUser } from "../auth/principal";
import type { AppEnv } from "../env";
import { resourceNotFound } from "../errors";
import { filterList } from "../http/list-query";
import { pageOf, paginated } from "../http/pagination";
import { pageQuery, parseQuery } from "../http/validate";
import { presentAppsDomain } from "./organizations";

const listSchema = z.strictObject({ names: filterList.optional(), guids: filterList.optional(), ...pageQuery });

export const domainsApi = new Hono<AppEnv>();

domainsApi.get("/", async (c) => {
  requireUser(c);
  const q = parseQuery(c, listSchema);
  const d = await presentAppsDomain(c);
  const all = [d].filter((x) => (!q.names || q.names.includes(x.name)) && (!q.guids || q.guids.includes(x.guid)));
  return c.json(paginated(c.req.url, q, all.length, pageOf(all, q)));
});

domainsApi.get("/:guid", async (c) => {
  requireUser(c);
  const d = await presentAppsDomain(c);
  if (c.req.param("guid") !== d.guid) throw resourceNotFound("Domain");
  return c.json(d);
});
