import { describe, expect, it } from "vitest";
import { routeTableQuerySchema, routeTableSchema } from "../../shared/protocol/route-table";

const instance = { instance_guid: "g1", app_guid: "a1", address: "10.0.0.5", port: 61001, index: 0 };

describe("routeTableSchema", () => {
  it("accepts a table, including a route with no running instance", () => {
    const table = { version: 4, routes: [{ host: "App.apps.test", instances: [instance] }, { host: "idle.apps.test", instances: [] }] };
    expect(routeTableSchema.parse(table)).toEqual(table);
  });

  it("accepts routes of one host with different paths", () => {
    const table = { version: 1, routes: [{ host: "a.test", instances: [] }, { host: "a.test", path: "/api", instances: [] }, { host: "a.test", path: "/api/v2", instances: [] }] };
    expect(routeTableSchema.parse(table)).toEqual(table);
  });

  it.each([
    ["a host with a port", { version: 1, routes: [{ host: "a.test:80", instances: [] }] }, "routes.0.host"],
    ["a duplicate host, compared case-insensitively", { version: 1, routes: [{ host: "a.test", instances: [] }, { host: "A.test", instances: [] }] }, "duplicate host a.test"],
    ["a duplicate host and path, compared as routers do", { version: 1, routes: [{ host: "a.test", path: "/api", instances: [] }, { host: "A.test", path: "/API/", instances: [] }] }, "duplicate host and path a.test/api"],
    ["a path without a leading slash", { version: 1, routes: [{ host: "a.test", path: "api", instances: [] }] }, "path"],
    ["a path of just /", { version: 1, routes: [{ host: "a.test", path: "/", instances: [] }] }, "path"],
    ["a path with a query", { version: 1, routes: [{ host: "a.test", path: "/a?b", instances: [] }] }, "path"],
    ["a negative version", { version: -1, routes: [] }, "version"],
    ["a port out of range", { version: 1, routes: [{ host: "a.test", instances: [{ ...instance, port: 70000 }] }] }, "port"],
    ["an unknown field", { version: 1, routes: [], extra: true }, "extra"],
  ])("rejects %s", (_what, table, mention) => {
    const result = routeTableSchema.safeParse(table);
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error!.issues)).toContain(mention.split(".").at(-1));
  });
});

describe("routeTableQuerySchema", () => {
  it("reads after as a non-negative integer, optional", () => {
    expect(routeTableQuerySchema.parse({ after: "12" })).toEqual({ after: 12 });
    expect(routeTableQuerySchema.parse({})).toEqual({});
    expect(routeTableQuerySchema.safeParse({ after: "-1" }).success).toBe(false);
    expect(routeTableQuerySchema.safeParse({ after: "x" }).success).toBe(false);
  });
});
