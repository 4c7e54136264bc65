/**
 * @module Which of a host's routes a request goes to, as Gorouter decides: the
 * route whose path is the longest prefix of the request's path, compared
 * segment by segment and case-insensitively (`/api` takes `/api` and
 * `/api/x`, not `/apix`), among those with a running instance; the route
 * without a path takes what no path route does. When no matching route has an
 * instance, the longest match answers (503, nothing running). Pure.
 */
import { routePathKey } from "../../shared/route-path";

const SLASH = 47; // "/"

/**
 * The request target's path as route paths are compared: up to the query,
 * lower-case. An absolute-form target (`GET http://host/api`, which a server
 * must accept) is compared by its path, as HAProxy's `path` reads it.
 */
export function requestPathKey(url: string | undefined): string {
  if (url === undefined) return "";
  let start = 0;
  if (url.charCodeAt(0) !== SLASH) {
    const authority = url.indexOf("://");
    if (authority !== -1) {
      const path = url.slice(authority + 3).search(/[/?]/);
      start = path === -1 ? url.length : authority + 3 + path;
    }
  }
  let end = url.indexOf("?", start);
  if (end === -1) end = url.length;
  return (start === 0 && end === url.length ? url : url.slice(start, end)).toLowerCase();
}

/** Whether a route path key (routePathKey; "" for none) covers a request path key, segment by segment. */
export function pathCovers(routeKey: string, requestKey: string): boolean {
  if (routeKey === "") return true;
  if (!requestKey.startsWith(routeKey)) return false;
  return requestKey.length === routeKey.length || requestKey.charCodeAt(routeKey.length) === SLASH;
}

export interface PathRoute {
  /** routePathKey of the route's path; "" for the route without one. */
  readonly pathKey: string;
  readonly backends: readonly unknown[];
}

/** Orders a host's routes for {@link matchRoute}: longest path first, the path-less route last. */
export function byPathLength<R extends PathRoute>(routes: R[]): R[] {
  return routes.sort((a, b) => b.pathKey.length - a.pathKey.length);
}

/**
 * The route of `routes` (ordered by {@link byPathLength}) the request target
 * `url` goes to, or undefined when none covers it.
 */
export function matchRoute<R extends PathRoute>(routes: readonly R[], url: string | undefined): R | undefined {
  if (routes.length === 1 && routes[0]!.pathKey === "") return routes[0];
  const key = requestPathKey(url);
  let longest: R | undefined;
  for (const route of routes) {
    if (!pathCovers(route.pathKey, key)) continue;
    if (route.backends.length > 0) return route;
    longest ??= route;
  }
  return longest;
}

