/**
 * @module `/v3/deployments`: the cf CLI lists an app's ACTIVE deployments after
 * every push and for `cf app`. Berth starts and restarts apps in place and
 * keeps no deployment records yet, so the list is always empty, which CC
 * answers for an app that has none; a deployment guid is unknown.
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireUser } from "../auth/principal";
import type { AppEnv } from "../env";
import { resourceNotFound } from "../errors";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseQuery } from "../http/validate";

const listSchema = z.strictObject({
  app_guids: filterList.optional(),
  states: filterList.optional(),
  status_values: filterList.optional(),
  status_reasons: filterList.optional(),
  guids: filterList.optional(),
  order_by: z.string().optional(),
  ...pageQuery,
});

export const deploymentsApi = new Hono<AppEnv>();

deploymentsApi.get("/", (c) => {
  requireUser(c);
  const q = parseQuery(c, listSchema);
  return c.json(paginated(c.req.url, q, 0, []));
});

deploymentsApi.get("/:guid", (c) => {
  requireUser(c);
  throw resourceNotFound("Deployment");
});
