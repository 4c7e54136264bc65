/**
 * @module App logs: recent lines and a live WebSocket tail for users (the same
 * space rules as apps), and the WebSocket cells ship an app's lines on. All of
 * it lands in the app's AppLogs Durable Object.
 */
import { and, eq } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { requireCell } from "../auth/principal";
import { reachableApp } from "../auth/scope";
import { instances } from "../db/schema";
import type { AppEnv, Bindings } from "../env";
import { notAuthorized, upgradeRequired } from "../errors";
import { parseQuery } from "../http/validate";

const appLogs = (env: Bindings, appGuid: string) => env.LOGS.get(env.LOGS.idFromName(appGuid));


function forward(c: { req: { raw: Request; header(name: string): string | undefined }; env: Bindings }, appGuid: string, path: string) {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") throw upgradeRequired();
  return appLogs(c.env, appGuid).fetch(new Request(`https://logs${path}`, c.req.raw));
}

/** Mounted at /v3/apps. */
export const appLogRoutes = new Hono<AppEnv>()
  .get("/:guid/logs", async (c) => {
    const { app } = await reachableApp(c, c.req.param("guid"));
    const { limit } = parseQuery(c, z.strictObject({ limit: z.coerce.number().int().min(1).max(10_000).default(1000) }));
    return c.json(await appLogs(c.env, app.guid).recent(limit));
  })
  .get("/:guid/logs/tail", async (c) => {
    const { app } = await reachableApp(c, c.req.param("guid"));
    return forward(c, app.guid, "/tail");
  });

/** Mounted at /v3/cells: a cell ships lines only for apps it runs an instance of. */
export const cellLogRoutes = new Hono<AppEnv>().get("/:id/apps/:guid/logs", async (c) => {
  const cell = requireCell(c, c.req.param("id"));
  const appGuid = c.req.param("guid");
  const [placed] = await c.var.db
    .select({ guid: instances.instanceGuid })
    .from(instances)
    .where(and(eq(instances.cellGuid, cell.guid), eq(instances.appGuid, appGuid)))
    .limit(1);
  if (!placed) throw notAuthorized();
  return forward(c, appGuid, "/ingest");
});
