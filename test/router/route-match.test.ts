/**
 * The route path rule (agent/router/route-match.ts), pure: longest segment
 * prefix wins, case-insensitively, among routes with instances; the path-less
 * route takes the rest. Gorouter's trie decides the same way.
 */
import { describe, expect, it } from "vitest";
import { byPathLength, matchRoute, pathCovers, requestPathKey, type PathRoute } from "../../agent/router/route-match";
import { routePathKey } from "../../shared/route-path";

const r = (path: string, instances = 1): PathRoute & { name: string } => ({ name: path || "(none)", pathKey: routePathKey(path), backends: Array(instances).fill(0) });
const pick = (routes: (PathRoute & { name: string })[], url: string) => matchRoute(byPathLength(routes), url)?.name;

describe("pathCovers", () => {
  it.each([
    ["/api", "/api", true],
    ["/api", "/api/", true],
    ["/api", "/api/x/y", true],
    ["/api", "/apix", false],
    ["/api", "/ap", false],
    ["/api", "/", false],
    ["/api/v1", "/api/v1/users", true],
    ["/api/v1", "/api/v10", false],
    ["", "/anything", true],
    ["", "*", true],
  ])("route %s covers %s: %s", (route, request, covers) => {
    expect(pathCovers(route, request)).toBe(covers);
  });
});

describe("requestPathKey and routePathKey", () => {
  it("drop the query, lower-case, and trim one trailing slash from a route path", () => {
    expect(requestPathKey("/API/X?q=/api2#f")).toBe("/api/x");
    expect(requestPathKey(undefined)).toBe("");
    expect(routePathKey("/Api/")).toBe("/api");
    expect(routePathKey("")).toBe("");
  });

  it("compare an absolute-form target (GET http://host/api) by its path", () => {
    expect(requestPathKey("http://Shop.apps.test/API/x?q=/y")).toBe("/api/x");
    expect(requestPathKey("https://shop.apps.test:8443?q=/api")).toBe("");
    expect(requestPathKey("http://shop.apps.test")).toBe("");
  });
});

describe("matchRoute", () => {
  const routes = () => [r(""), r("/api"), r("/api/v2"), r("/static")];

  it("takes the longest segment prefix, the path-less route for the rest", () => {
    expect(pick(routes(), "/")).toBe("(none)");
    expect(pick(routes(), "/api")).toBe("/api");
    expect(pick(routes(), "/api?x=1")).toBe("/api");
    expect(pick(routes(), "/api/users")).toBe("/api");
    expect(pick(routes(), "/api/v2/users")).toBe("/api/v2");
    expect(pick(routes(), "/api/v20")).toBe("/api");
    expect(pick(routes(), "/apix")).toBe("(none)");
    expect(pick(routes(), "/STATIC/app.js")).toBe("/static");
  });

  it("skips a matching route with no instance for a shorter one that has some, and answers with the longest when none has", () => {
    expect(pick([r(""), r("/api", 0)], "/api/x")).toBe("(none)");
    expect(pick([r("", 0), r("/api", 0), r("/api/v2", 0)], "/api/v2/x")).toBe("/api/v2");
  });

  it("finds nothing when no route covers the path (a host with path routes only)", () => {
    expect(pick([r("/api")], "/")).toBeUndefined();
    expect(pick([r("/api")], "/apix")).toBeUndefined();
  });

  it("is the order the routes come in that byPathLength fixes, not the table's", () => {
    expect(pick([r("/a"), r("/a/b/c"), r(""), r("/a/b")], "/a/b/c/d")).toBe("/a/b/c");
    expect(pick([r("/a"), r("/a/b/c"), r(""), r("/a/b")], "/a/b/x")).toBe("/a/b");
  });
});
