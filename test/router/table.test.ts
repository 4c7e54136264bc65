import { describe, expect, it } from "vitest";
import { backendKey, compileTable, pickBackend, type Backend } from "../../agent/router/table";
import { route } from "./support";

describe("compileTable", () => {
  it("keys routes by lower-case host and lists every backend", () => {
    const table = compileTable({ version: 3, routes: [route("A.Apps.Test", 1001, 1002), route("idle.apps.test")] });
    expect(table.version).toBe(3);
    expect([...table.routes.keys()]).toEqual(["a.apps.test", "idle.apps.test"]);
    expect(table.routes.get("a.apps.test")!.backends.map((b) => b.key)).toEqual(["127.0.0.1:1001", "127.0.0.1:1002"]);
    expect(table.routes.get("idle.apps.test")!.backends).toEqual([]);
    expect(table.backendKeys).toEqual(new Set(["127.0.0.1:1001", "127.0.0.1:1002"]));
  });

  it("brackets IPv6 addresses in backend keys", () => {
    expect(backendKey("fd00::5", 61001)).toBe("[fd00::5]:61001");
    expect(backendKey("10.0.0.5", 61001)).toBe("10.0.0.5:61001");
  });
});

describe("pickBackend", () => {
  it("goes round robin", () => {
    const r = compileTable({ version: 1, routes: [route("a", 1, 2, 3)] }).routes.get("a")!;
    expect(Array.from({ length: 7 }, () => pickBackend(r, null)!.port)).toEqual([1, 2, 3, 1, 2, 3, 1]);
  });

  it("skips backends already tried and gives up when all were", () => {
    const r = compileTable({ version: 1, routes: [route("a", 1, 2, 3)] }).routes.get("a")!;
    const tried = new Set<Backend>([r.backends[0]!, r.backends[1]!]);
    expect(pickBackend(r, tried)!.port).toBe(3);
    expect(pickBackend(r, tried)!.port).toBe(3);
    tried.add(r.backends[2]!);
    expect(pickBackend(r, tried)).toBeUndefined();
  });
});
