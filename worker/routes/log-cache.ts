/**
 * @module A Log Cache-compatible read API over the per-app log store, the one
 * the cf CLI reads for `cf logs --recent`, the live `cf logs` (it polls from
 * its last envelope's time) and push's output: `GET /api/v1/read/:source_id`
 * with Log Cache's query (`start_time`, `end_time`, `envelope_types`, `limit`,
 * `descending`) and its JSON envelopes (loggregator v2: times in nanoseconds as
 * strings, payloads base64). The source id is the app's guid; only LOG
 * envelopes exist here, tagged with the line's source_type (APP/PROC/WEB,
 * CELL, RTR, API, STG) and its source instance as instance_id. The cf CLI 8 finds Log Cache at the API URL with
 * "api" replaced by "log-cache" (a bare host like 127.0.0.1 stays as it is;
 * a deployment routes log-cache.DOMAIN to this Worker too), so these routes hang off the root.
 */
import { Hono } from "hono";
import { z } from "zod";
import { reachableApp } from "../auth/scope";
import type { AppEnv } from "../env";
import { parseQuery } from "../http/validate";
import { bytesToBase64 } from "../../shared/base64";
import { sourceTypeTag } from "../../shared/protocol/logs";

// The cf CLI sends Go's zero time for "from the start": a negative number, read as 0.
const nanos = z.string().regex(/^-?\d{1,19}$/, "must be nanoseconds since the epoch").transform((s) => (s.startsWith("-") ? 0n : BigInt(s)));
/** The Log Cache release whose read API this follows. */
const LOG_CACHE_API_VERSION = "2.11.4";

const readQuery = z.strictObject({
  start_time: nanos.optional(),
  end_time: nanos.optional(),
  envelope_types: z.string().optional(),
  // Log Cache's default and cap.
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  descending: z.enum(["true", "false"]).default("false"),
  name_filter: z.string().optional(),
});

export const logCacheApi = new Hono<AppEnv>();

/** The cf CLI asks first and reads /api/v1/read only from a Log Cache that names a version (2.x). */
logCacheApi.get("/api/v1/info", (c) => c.json({ version: LOG_CACHE_API_VERSION }));

logCacheApi.get("/api/v1/read/:source_id", async (c) => {
  const { app } = await reachableApp(c, c.req.param("source_id"));
  const q = parseQuery(c, readQuery);
  const types = c.req.queries("envelope_types")?.flatMap((t) => t.split(",")) ?? [];
  // Only LOG envelopes are kept: asking for other types alone finds none.
  if (types.length > 0 && !types.includes("LOG") && !types.includes("ANY")) return c.json({ envelopes: { batch: [] } });
  const rows = await c.env.LOGS.get(c.env.LOGS.idFromName(app.guid)).read({
    start: q.start_time ?? 0n, end: q.end_time ?? null, limit: q.limit, descending: q.descending === "true",
  });
  return c.json({
    envelopes: {
      batch: rows.map(({ ns, line }) => ({
        timestamp: ns,
        source_id: app.guid,
        instance_id: String(line.instance_index),
        deprecated_tags: {},
        tags: { source_type: sourceTypeTag(line.source), app_id: app.guid, app_name: app.name },
        log: { payload: bytesToBase64(new TextEncoder().encode(line.line)), type: line.stream === "stderr" ? "ERR" : "OUT" },
      })),
    },
  });
});
