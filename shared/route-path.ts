/**
 * @module Route paths (CC's `route.path`): the rules the API holds them to and
 * the key routers compare them by. Pure; the router's matching rule is in
 * agent/router/route-match.ts.
 */

/** CC's RouteCreateMessage::MAXIMUM_PATH_LENGTH. */
export const MAX_ROUTE_PATH_LENGTH = 128;

/** RFC 3986 path characters (pchar and "/"); `#` is refused too: a fragment never reaches a router, so such a route could never match. */
const URI_PATH = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/;

/**
 * Why `path` cannot be a route's path, in CC's words (the message's checks,
 * joined as CC joins them, then the model's), or undefined when it can. ""
 * is no path and always fine.
 */
export function routePathProblem(path: string): string | undefined {
  if (path === "") return undefined;
  const problems: string[] = [];
  if (path.length > MAX_ROUTE_PATH_LENGTH) problems.push(`Path is too long (maximum is ${MAX_ROUTE_PATH_LENGTH} characters)`);
  if (!path.startsWith("/")) problems.push("Path must begin with /");
  if (path.includes("?")) problems.push("Path cannot contain ?");
  if (path === "/") problems.push("Path cannot be exactly /");
  if (problems.length > 0) return problems.join(", ");
  // Slashes alone ("//") would name the host's root, which a path-less route is.
  if (!URI_PATH.test(path) || /^\/+$/.test(path)) return "Path is invalid.";
  return undefined;
}

/**
 * The key a path is matched and kept unique by: lower-case, one trailing "/"
 * dropped (Gorouter's route key: `/API/` and `/api` are the same route).
 */
export function routePathKey(path: string): string {
  const lower = path.toLowerCase();
  return lower.endsWith("/") ? lower.slice(0, -1) : lower;
}
