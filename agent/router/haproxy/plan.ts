/**
 * @module From one route table to the next on a running HAProxy: which pool
 * backend each route uses, which servers it has, and the runtime API commands
 * that take HAProxy from the old state to the new one. Pure: the driver
 * (haproxy-router.ts) sends the commands, or reloads with the new state when
 * the pool is too small.
 *
 * A route's map key is its host, its path key (shared/route-path.ts) and a
 * "/" (`shop.apps.test/api/`); the frontend looks up host + lower-cased path
 * + "/" by longest prefix (config.ts), which is route-match.ts's rule: the
 * longest segment prefix wins. Routes with instances are in the routes map
 * (→ their backend), routes without in the idle map (→ `none`, a 503), which
 * is asked only when no route with instances covers the request.
 *
 * Order keeps every request answerable while it changes: a route's servers
 * are added (and enabled) before its routes-map entry points at them, and a
 * route leaves the routes map before its servers go. A server leaving is put
 * in maintenance at once (no new request goes to it) and deleted once HAProxy
 * agrees (it refuses while connections to it remain): `retire`.
 */
import type { RouteTable } from "../../../shared/protocol/route-table";
import { routePathKey } from "../../../shared/route-path";
import { routeKey } from "../host";
import { backendKey } from "../table";
import { backendName, DYNAMIC_SERVER_OPTIONS, NO_ENDPOINTS, serverAddress, type HaproxyServer } from "./config";

export interface Slot {
  /** The map key of the route using this backend, null while free. */
  readonly route: string | null;
  /** By instance key (`address:port`), in the order the table lists them. */
  readonly servers: ReadonlyMap<string, HaproxyServer>;
  /** Next server number: names are never reused in a backend while an old one may still be retiring. */
  readonly nextId: number;
}

export interface PoolState {
  readonly slots: readonly Slot[];
}

/** The map files the frontend reads. */
export interface RouteMaps {
  /** Routes with instances → backend. */
  readonly routes: string;
  /** Routes without → `none`. */
  readonly idle: string;
}

/** A server to delete once its connections are gone (`backend/server`). */
export type Retiring = string;

export interface Plan {
  readonly next: PoolState;
  /** Runtime API commands, in order; empty when `reload` is set. */
  readonly commands: readonly string[];
  readonly retire: readonly Retiring[];
  /** The pool has too few backends: render `next` (already grown) and reload. */
  readonly reload: boolean;
}

interface Instance {
  readonly key: string;
  readonly address: string;
  readonly port: number;
}

const FREE: Slot = { route: null, servers: new Map(), nextId: 1 };

export function emptyPool(size: number): PoolState {
  return { slots: Array.from({ length: size }, () => FREE) };
}

/** A route's key in the maps: host, path key, "/" (so `/api` covers `/api/x`, never `/apix`). */
export function routeMapKey(host: string, path: string | undefined): string {
  return `${routeKey(host)}${routePathKey(path ?? "")}/`;
}

/** map key → its instances, deduplicated by address:port. */
function desiredRoutes(table: RouteTable): Map<string, Instance[]> {
  const routes = new Map<string, Instance[]>();
  for (const entry of table.routes) {
    const seen = new Map<string, Instance>();
    for (const i of entry.instances) {
      const key = backendKey(i.address, i.port);
      if (!seen.has(key)) seen.set(key, { key, address: i.address, port: i.port });
    }
    routes.set(routeMapKey(entry.host, entry.path), [...seen.values()]);
  }
  return routes;
}

/** The plan taking `current` to `table`. */
export function planTable(current: PoolState, table: RouteTable, maps: RouteMaps): Plan {
  const desired = desiredRoutes(table);
  const slots: Slot[] = [...current.slots];
  const commands: string[] = [];
  const retire: Retiring[] = [];
  const removeServer = (backend: string, server: HaproxyServer): void => {
    commands.push(`set server ${backend}/${server.name} state maint`);
    retire.push(`${backend}/${server.name}`);
  };

  // Routes that left: map entry first, then their servers.
  slots.forEach((slot, i) => {
    if (slot.route === null || desired.has(slot.route)) return;
    commands.push(`del map ${slot.servers.size > 0 ? maps.routes : maps.idle} ${slot.route}`);
    for (const server of slot.servers.values()) removeServer(backendName(i), server);
    slots[i] = { route: null, servers: new Map(), nextId: slot.nextId };
  });

  const byRoute = new Map<string, number>();
  slots.forEach((slot, i) => slot.route !== null && byRoute.set(slot.route, i));
  const free = slots.flatMap((slot, i) => (slot.route === null ? [i] : []));
  let grow = 0;
  for (const [route, instances] of desired) {
    let index = byRoute.get(route);
    const isNew = index === undefined;
    if (index === undefined) {
      index = free.shift();
      if (index === undefined) {
        index = slots.length;
        slots.push(FREE);
        grow++;
      }
    }
    const slot = slots[index]!;
    const backend = backendName(index);
    const servers = new Map<string, HaproxyServer>();
    let nextId = slot.nextId;
    const wasIdle = isNew || slot.servers.size === 0;
    const nowIdle = instances.length === 0;
    // The last instance leaving: the route answers 503 before its servers go.
    if (!wasIdle && nowIdle) commands.push(`add map ${maps.idle} ${route} ${NO_ENDPOINTS}`, `del map ${maps.routes} ${route}`);
    // New servers before old ones leave: a route whose every instance changed always has one up.
    for (const instance of instances) {
      const had = slot.servers.get(instance.key);
      if (had !== undefined) {
        servers.set(instance.key, had);
        continue;
      }
      const server = { name: `s${nextId++}`, address: instance.address, port: instance.port };
      servers.set(instance.key, server);
      commands.push(`add server ${backend}/${server.name} ${serverAddress(server.address, server.port)} ${DYNAMIC_SERVER_OPTIONS}`, `enable server ${backend}/${server.name}`);
    }
    for (const [key, server] of slot.servers) if (!servers.has(key)) removeServer(backend, server);
    slots[index] = { route, servers, nextId };
    if (wasIdle && !nowIdle) {
      commands.push(`add map ${maps.routes} ${route} ${backend}`);
      if (!isNew) commands.push(`del map ${maps.idle} ${route}`);
    }
    if (isNew && nowIdle) commands.push(`add map ${maps.idle} ${route} ${NO_ENDPOINTS}`);
  }
  if (grow > 0) {
    // Room to grow: double, so a busy control plane does not reload on every new route.
    const size = Math.max(current.slots.length * 2, slots.length);
    while (slots.length < size) slots.push(FREE);
    return { next: { slots }, commands: [], retire: [], reload: true };
  }
  return { next: { slots }, commands, retire, reload: false };
}

/** The map files' contents for `pool`: `key value` per line. */
export function mapFiles(pool: PoolState): { routes: string; idle: string } {
  let routes = "";
  let idle = "";
  pool.slots.forEach((slot, i) => {
    if (slot.route === null) return;
    if (slot.servers.size > 0) routes += `${slot.route} ${backendName(i)}\n`;
    else idle += `${slot.route} ${NO_ENDPOINTS}\n`;
  });
  return { routes, idle };
}

/** Each backend's servers, as the config renders them. */
export function poolServers(pool: PoolState): HaproxyServer[][] {
  return pool.slots.map((slot) => [...slot.servers.values()]);
}
