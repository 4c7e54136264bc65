/**
 * @module `/v3/routers` (admin): the routers enrolled, and forgetting one. A
 * router's credential is checked on every request, so a deleted router's
 * next poll of the route table answers 401. And `POST /v3/routers/logs`, where
 * a router (only a router) sends the apps' access lines
 * (shared/protocol/router-logs.ts).
 */
import { Hono } from "hono";
import { z } from "zod";
import { inArray } from "drizzle-orm";
import { requireAdmin, requireAuthenticated } from "../auth/principal";
import { routeDestinations } from "../db/schema";
import { paramChunks } from "../db/param-chunks";
import { appendAppLines, platformLine } from "../logs/app-lines";
import { routerLogBatchSchema, type RouterLogAnswer } from "../../shared/protocol/router-logs";
import type { AppEnv, Db } from "../env";
import { notAuthorized, resourceNotFound } from "../errors";
import { parseJson } from "../http/validate";
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

/** Of `appGuids`, the apps with a route mapped: the ones a router may write access lines for. */
async function routedApps(db: Db, appGuids: readonly string[]): Promise<Set<string>> {
  const routed = new Set<string>();
  for (const chunk of paramChunks(appGuids)) {
    const rows = await db.selectDistinct({ appGuid: routeDestinations.appGuid }).from(routeDestinations).where(inArray(routeDestinations.appGuid, chunk));
    for (const r of rows) routed.add(r.appGuid);
  }
  return routed;
}

routersApi.post("/logs", async (c) => {
  // Routers only: an admin, a user or a cell writing RTR lines would be forging them.
  if (requireAuthenticated(c).kind !== "router") throw notAuthorized();
  const batch = await parseJson(c, routerLogBatchSchema);
  const routed = await routedApps(c.var.db, [...new Set(batch.lines.map((l) => l.app_guid))]);
  const byApp = new Map<string, ReturnType<typeof platformLine>[]>();
  let refused = 0;
  for (const l of batch.lines) {
    if (!routed.has(l.app_guid)) {
      refused++;
      continue;
    }
    const line = { ...platformLine("RTR", l.line, l.timestamp), instance_guid: l.instance_guid, ...(l.truncated ? { truncated: true } : {}) };
    byApp.set(l.app_guid, [...(byApp.get(l.app_guid) ?? []), line]);
  }
  await appendAppLines(c.env, [...byApp].map(([appGuid, lines]) => ({ appGuid, lines })));
  const answer: RouterLogAnswer = { accepted: batch.lines.length - refused, refused };
  return c.json(answer);
});
