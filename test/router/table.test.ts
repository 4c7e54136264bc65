import { describe, expect, it } from "vitest";
import { backendKey, compileTable, lookupRoute, pickBackend, type Backend, type CompiledTable } from "../../agent/router/table";
import { pathRoute, route } from "./support";

const only = (table: CompiledTable, host: string) => table.hosts.get(host)![0]!;

describe("compileTable", () => {
  it("keys routes by lower-case host and lists every backend", () => {
    const table = compileTable({ version: 3, routes: [route("A.Apps.Test", 1001, 1002), route("idle.apps.test")] });
    expect(table.version).toBe(3);
    expect([...table.hosts.keys()]).toEqual(["a.apps.test", "idle.apps.test"]);
    expect(only(table, "a.apps.test").backends.map((b) => b.key)).toEqual(["127.0.0.1:1001", "127.0.0.1:1002"]);
    expect(only(table, "idle.apps.test").backends).toEqual([]);
    expect(table.backendKeys).toEqual(new Set(["127.0.0.1:1001", "127.0.0.1:1002"]));
  });

  it("keeps a host's routes longest path first, and lookupRoute picks by path", () => {
    const table = compileTable({ version: 1, routes: [route("a", 1), pathRoute("a", "/API/", 2), pathRoute("a", "/api/v2", 3)] });
    expect(table.hosts.get("a")!.map((r) => r.pathKey)).toEqual(["/api/v2", "/api", ""]);
    expect(lookupRoute(table, "a", "/api/v2/x")!.backends[0]!.port).toBe(3);
    expect(lookupRoute(table, "a", "/Api")!.backends[0]!.port).toBe(2);
    expect(lookupRoute(table, "a", "/")!.backends[0]!.port).toBe(1);
    expect(lookupRoute(table, "b", "/")).toBeUndefined();
  });

  it("brackets IPv6 addresses in backend keys", () => {
    expect(backendKey("fd00::5", 61001)).toBe("[fd00::5]:61001");
    expect(backendKey("10.0.0.5", 61001)).toBe("10.0.0.5:61001");
  });
});

describe("pickBackend", () => {
  it("goes round robin", () => {
    const r = only(compileTable({ version: 1, routes: [route("a", 1, 2, 3)] }), "a");
    expect(Array.from({ length: 7 }, () => pickBackend(r, null)!.port)).toEqual([1, 2, 3, 1, 2, 3, 1]);
  });

  it("skips backends already tried and gives up when all were", () => {
    const r = only(compileTable({ version: 1, routes: [route("a", 1, 2, 3)] }), "a");
    const tried = new Set<Backend>([r.backends[0]!, r.backends[1]!]);
    expect(pickBackend(r, tried)!.port).toBe(3);
    expect(pickBackend(r, tried)!.port).toBe(3);
    tried.add(r.backends[2]!);
    expect(pickBackend(r, tried)).toBeUndefined();
  });
});
