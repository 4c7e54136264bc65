/**
 * @module `/v3/routers` (admin): the routers enrolled, and forgetting one. A
 * router's credential is checked on every request, so a deleted router's
 * next poll of the route table answers 401.
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireAdmin } from "../auth/principal";
import type { AppEnv } from "../env";
import { resourceNotFound } from "../errors";
import { link } from "../http/links";
import { paginated } from "../http/pagination";
import { pageQuery, parseQuery } from "../http/validate";
import { deleteRouter, listRouters } from "../scheduling/cells-repo";

export const routersApi = new Hono<AppEnv>();

routersApi.get("/", async (c) => {
  requireAdmin(c);
  const q = parseQuery(c, z.strictObject(pageQuery));
  const { total, routers } = await listRouters(c.var.db, q.page, q.per_page);
  return c.json(paginated(c.req.url, q, total, routers.map((r) => ({
    guid: r.guid, name: r.name, created_at: r.createdAt, updated_at: r.updatedAt, links: { self: link(c, `/v3/routers/${r.guid}`) },
  }))));
});

routersApi.delete("/:guid", async (c) => {
  requireAdmin(c);
  if (!(await deleteRouter(c.var.db, c.req.param("guid")))) throw resourceNotFound("Router");
  return c.body(null, 204);
});
