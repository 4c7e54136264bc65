/**
 * @module The route table routers long-poll (shared/protocol/route-table.ts):
 * every route with the RUNNING instances of its destinations' processes, at
 * their cell's address and published host port. SUSPECT and EVACUATING copies
 * that still run stay listed: they serve until their replacement runs.
 * Read in one batch, so the version matches the contents.
 */
import { and, eq, isNotNull } from "drizzle-orm";
import type { Db } from "../env";
import type { RouteInstance, RouteTable } from "../../shared/protocol/route-table";
import { ROUTES_TABLE_COUNTER } from "../db/counters";
import { cells, counters, instances, processes, routeDestinations, routes } from "../db/schema";
import { routePathKey } from "../../shared/route-path";

export async function buildRouteTable(db: Db): Promise<RouteTable> {
  const [version, routeRows, destinationRows, running] = await db.batch([
    db.select({ value: counters.value }).from(counters).where(eq(counters.name, ROUTES_TABLE_COUNTER)).limit(1),
    db.select({ guid: routes.guid, host: routes.host, domain: routes.domain, path: routes.path }).from(routes).orderBy(routes.host, routes.domain, routes.path),
    db.select({ routeGuid: routeDestinations.routeGuid, appGuid: routeDestinations.appGuid, processType: routeDestinations.processType }).from(routeDestinations),
    db.select({
      instance_guid: instances.instanceGuid, index: instances.index, port: instances.hostPort, address: cells.address,
      appGuid: instances.appGuid, processType: processes.type,
    }).from(instances)
      .innerJoin(cells, eq(cells.guid, instances.cellGuid))
      .innerJoin(processes, eq(processes.guid, instances.processGuid))
      .where(and(eq(instances.state, "RUNNING"), isNotNull(instances.hostPort)))
      .orderBy(instances.index, instances.instanceGuid),
  ]);
  const byProcess = new Map<string, RouteInstance[]>();
  for (const r of running) {
    if (r.port === null) continue;
    const k = `${r.appGuid}/${r.processType}`;
    byProcess.set(k, [...(byProcess.get(k) ?? []), { instance_guid: r.instance_guid, app_guid: r.appGuid, index: r.index, port: r.port, address: r.address }]);
  }
  const destinations = new Map<string, string[]>();
  for (const d of destinationRows) destinations.set(d.routeGuid, [...(destinations.get(d.routeGuid) ?? []), `${d.appGuid}/${d.processType}`]);
  // Hosts and paths compare case-insensitively and a pair must be unique: routes naming one pair share an entry.
  const table = new Map<string, { host: string; path: string; instances: Map<string, RouteInstance> }>();
  for (const r of routeRows) {
    const host = `${r.host}.${r.domain}`.toLowerCase();
    const key = `${host}${routePathKey(r.path)}`;
    const entry = table.get(key) ?? { host, path: r.path, instances: new Map<string, RouteInstance>() };
    for (const k of destinations.get(r.guid) ?? []) for (const i of byProcess.get(k) ?? []) entry.instances.set(i.instance_guid, i);
    table.set(key, entry);
  }
  return {
    version: version[0]?.value ?? 0,
    // A route without a path carries none, so routers that predate paths read the table as before.
    routes: [...table.values()].map((e) => ({ host: e.host, ...(e.path === "" ? {} : { path: e.path }), instances: [...e.instances.values()] })),
  };
}
