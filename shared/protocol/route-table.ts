/**
 * @module The route table routers long-poll: `GET /v3/routes/table?after=VERSION`.
 *
 * Semantics (the same long-poll as the cells' desired set, docs/architecture.md § Agent protocol):
 * - 200 with a {@link RouteTable} when the table's `version` differs from `after`
 *   (or `after` is absent); the server may hold the request until it changes.
 * - 204 with no body when the hold timed out and nothing changed. A 204 never
 *   means "no routes": an empty table is a 200 with `routes: []`.
 * - `version` is a monotonic counter (the `counters` row "route_table"); the
 *   router sends back the last version it applied.
 *
 * What the table says: every route the control plane knows (`host` is the full
 * hostname, e.g. `myapp.apps.localhost`, without a port), each with the instances
 * that are RUNNING right now. A route with no running instance stays in the table
 * with `instances: []` so the router answers 503 (nothing running) rather than 404
 * (unknown host). A route may carry a `path` (CC's route path, absent for none):
 * the router sends a request to the host's route with the longest path that is a
 * segment prefix of the request's path (shared/route-path.ts). Hosts and paths
 * compare case-insensitively; a host and path pair is unique in a table.
 */
import { z } from "zod";
import { MAX_ROUTE_PATH_LENGTH, routePathKey } from "../route-path";

/** A DNS name (no port, no scheme); letters in any case, compared case-insensitively. */
const hostname = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*$/, "must be a hostname without a port");

export const routeInstanceSchema = z.strictObject({
  instance_guid: z.string().min(1),
  /** The app the instance runs: whose logs the router's access line for it goes to. */
  app_guid: z.string().min(1),
  /** The cell's address (IP or hostname) the instance's port is published on. */
  address: z.string().min(1),
  /** The host port on the cell (never the container's own port). */
  port: z.number().int().min(1).max(65535),
  index: z.number().int().min(0),
});

export const routeEntrySchema = z.strictObject({
  host: hostname,
  /** Absent for a route without a path (older control planes never send one). */
  path: z.string().max(MAX_ROUTE_PATH_LENGTH).regex(/^\/[^?#]+$/, "must begin with /, be more than /, and have no ? or #").optional(),
  instances: z.array(routeInstanceSchema),
});

export const routeTableSchema = z
  .strictObject({
    version: z.number().int().min(0),
    routes: z.array(routeEntrySchema),
  })
  .superRefine((table, ctx) => {
    const seen = new Set<string>();
    table.routes.forEach((route, i) => {
      const key = `${route.host.toLowerCase()}${routePathKey(route.path ?? "")}`;
      if (seen.has(key)) ctx.addIssue({ code: "custom", path: ["routes", i, "host"], message: `duplicate host and path ${key}` });
      seen.add(key);
    });
  });

/** Query of `GET /v3/routes/table`: `after` is the version the router already has. */
export const routeTableQuerySchema = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
});

export type RouteInstance = z.infer<typeof routeInstanceSchema>;
export type RouteEntry = z.infer<typeof routeEntrySchema>;
export type RouteTable = z.infer<typeof routeTableSchema>;
export type RouteTableQuery = z.infer<typeof routeTableQuerySchema>;
