/**
 * @module `/v3/isolation_segments`: Berth places every app on one shared pool
 * of cells and has no isolation segments, so the list is always empty (the
 * cf CLI's `cf org` lists an organization's segments with it). Filters are
 * still validated, so a malformed query gets CC's error rather than a list.
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireUser } from "../auth/principal";
import type { AppEnv } from "../env";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseQuery } from "../http/validate";

export const isolationSegments = new Hono<AppEnv>();

isolationSegments.get("/", (c) => {
  requireUser(c);
  const q = parseQuery(c, z.strictObject({ ...pageQuery, names: filterList.optional(), guids: filterList.optional(), organization_guids: filterList.optional(), order_by: z.enum(["created_at", "-created_at", "name", "-name"]).optional() }));
  return c.json(paginated(c.req.url, q, 0, []));
});
