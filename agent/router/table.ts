/**
 * @module The route table as the proxy reads it: a Map from host key to the
 * host's routes (longest path first) and the instances behind each, compiled
 * once per table so a request costs one lookup and a short path match.
 * Pure: nothing here opens a socket.
 */
import type { RouteTable } from "../../shared/protocol/route-table";
import { routePathKey } from "../../shared/route-path";
import { routeKey } from "./host";
import { byPathLength, matchRoute } from "./route-match";

export interface Backend {
  readonly instanceGuid: string;
  readonly index: number;
  readonly address: string;
  readonly port: number;
  /** `address:port` (IPv6 in brackets): the key of its connection pool and of the access log. */
  readonly key: string;
}

export interface Route {
  readonly host: string;
  /** routePathKey of the route's path; "" for the route without one. */
  readonly pathKey: string;
  readonly backends: readonly Backend[];
  /** Round-robin cursor; the only mutable field, advanced by {@link pickBackend}. */
  cursor: number;
}

export interface CompiledTable {
  readonly version: number;
  /** Host key → the host's routes, longest path first (route-match.ts). */
  readonly hosts: ReadonlyMap<string, readonly Route[]>;
  /** Every backend key in the table, to retire the pools of instances that left. */
  readonly backendKeys: ReadonlySet<string>;
}

export function backendKey(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

export function compileTable(table: RouteTable): CompiledTable {
  const hosts = new Map<string, Route[]>();
  const backendKeys = new Set<string>();
  for (const entry of table.routes) {
    const backends = entry.instances.map((i): Backend => {
      const key = backendKey(i.address, i.port);
      backendKeys.add(key);
      return { instanceGuid: i.instance_guid, index: i.index, address: i.address, port: i.port, key };
    });
    const host = routeKey(entry.host);
    const list = hosts.get(host) ?? [];
    list.push({ host, pathKey: routePathKey(entry.path ?? ""), backends, cursor: 0 });
    hosts.set(host, list);
  }
  for (const list of hosts.values()) byPathLength(list);
  return { version: table.version, hosts, backendKeys };
}

/** The route a request for `host` (a host key) and target `url` goes to; undefined for an unknown host or path. */
export function lookupRoute(table: CompiledTable, host: string, url: string | undefined): Route | undefined {
  const routes = table.hosts.get(host);
  return routes === undefined ? undefined : matchRoute(routes, url);
}

/**
 * The next backend in round-robin order, skipping the ones already tried for
 * this request (`tried` is null on the first attempt, so the common path
 * allocates nothing). Undefined when every backend has been tried.
 */
export function pickBackend(route: Route, tried: ReadonlySet<Backend> | null): Backend | undefined {
  const n = route.backends.length;
  for (let i = 0; i < n; i++) {
    const backend = route.backends[route.cursor % n]!;
    route.cursor = (route.cursor + 1) % n;
    if (tried === null || !tried.has(backend)) return backend;
  }
  return undefined;
}
