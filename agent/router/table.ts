/**
 * @module The route table as the proxy reads it: a Map from route key to the
 * instances behind it, compiled once per table so a request costs one lookup.
 * Pure: nothing here opens a socket.
 */
import type { RouteTable } from "../../shared/protocol/route-table";
import { routeKey } from "./host";

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
  readonly backends: readonly Backend[];
  /** Round-robin cursor; the only mutable field, advanced by {@link pickBackend}. */
  cursor: number;
}

export interface CompiledTable {
  readonly version: number;
  readonly routes: ReadonlyMap<string, Route>;
  /** Every backend key in the table, to retire the pools of instances that left. */
  readonly backendKeys: ReadonlySet<string>;
}

export function backendKey(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

export function compileTable(table: RouteTable): CompiledTable {
  const routes = new Map<string, Route>();
  const backendKeys = new Set<string>();
  for (const entry of table.routes) {
    const backends = entry.instances.map((i): Backend => {
      const key = backendKey(i.address, i.port);
      backendKeys.add(key);
      return { instanceGuid: i.instance_guid, index: i.index, address: i.address, port: i.port, key };
    });
    const host = routeKey(entry.host);
    routes.set(host, { host, backends, cursor: 0 });
  }
  return { version: table.version, routes, backendKeys };
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
