/**
 * @module `GET /v3/routes/table?after=VERSION` (shared/protocol/route-table.ts):
 * routers (and admins) long-poll the route table; held by the "routes_table"
 * VersionChannel object, answered at once when the counter moves, 204 after the hold.
 */
import { Hono } from "hono";
import type { AppEnv } from "../env";
import { requireRouter, stillAuthenticated } from "../auth/principal";
import { parseQuery } from "../http/validate";
import { routeTableQuerySchema } from "../../shared/protocol/route-table";
import { ROUTES_TABLE_COUNTER, readCounter } from "../db/counters";
import { buildRouteTable } from "../scheduling/route-table";
import { holdUntilChanged, watchChannel } from "../scheduling/long-poll";

export const routeTableApi = new Hono<AppEnv>();

/** The table's version on a WebSocket (the channel hibernates between changes); the long-poll below is the fallback. */
routeTableApi.get("/watch", async (c) => {
  requireRouter(c);
  return watchChannel(c.env, { kind: "routes_table" }, c.req.raw);
});

routeTableApi.get("/", async (c) => {
  requireRouter(c);
  const { after } = parseQuery(c, routeTableQuerySchema);
  if (after !== undefined && (await readCounter(c.var.db, ROUTES_TABLE_COUNTER)) === after) {
    const changed = await holdUntilChanged(c.env, { kind: "routes_table" }, after);
    await stillAuthenticated(c);
    if (!changed) return c.body(null, 204);
  }
  const table = await buildRouteTable(c.var.db);
  // A wake that did not move the table (a pass notifies broadly) is still "unchanged".
  if (after !== undefined && table.version === after) return c.body(null, 204);
  return c.json(table);
});
