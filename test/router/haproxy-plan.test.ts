/** plan.ts: from one route table to the next on a running HAProxy, as runtime API commands. */
import { describe, expect, it } from "vitest";
import { DYNAMIC_SERVER_OPTIONS } from "../../agent/router/haproxy/config";
import { emptyPool, mapFiles, planTable, poolServers } from "../../agent/router/haproxy/plan";
import { pathRoute, route } from "./support";

const MAPS = { routes: "/run/routes.map", idle: "/run/idle.map" };
const MAP = MAPS.routes;
const IDLE = MAPS.idle;

describe("planTable", () => {
  it("adds a new route's servers before the map entry that points at them", () => {
    const plan = planTable(emptyPool(2), { version: 1, routes: [route("A.apps.test", 8001, 8002)] }, MAPS);
    expect(plan.reload).toBe(false);
    expect(plan.commands).toEqual([
      `add server b0/s1 127.0.0.1:8001 ${DYNAMIC_SERVER_OPTIONS}`,
      "enable server b0/s1",
      `add server b0/s2 127.0.0.1:8002 ${DYNAMIC_SERVER_OPTIONS}`,
      "enable server b0/s2",
      `add map ${MAP} a.apps.test/ b0`,
    ]);
    expect(mapFiles(plan.next)).toEqual({ routes: "a.apps.test/ b0\n", idle: "" });
  });

  it("keeps servers that stay, retires those that left and never reuses their names", () => {
    const first = planTable(emptyPool(2), { version: 1, routes: [route("a.apps.test", 8001, 8002)] }, MAPS);
    const second = planTable(first.next, { version: 2, routes: [route("a.apps.test", 8002, 8003)] }, MAPS);
    expect(second.commands).toEqual([`add server b0/s3 127.0.0.1:8003 ${DYNAMIC_SERVER_OPTIONS}`, "enable server b0/s3", "set server b0/s1 state maint"]);
    expect(second.retire).toEqual(["b0/s1"]);
    expect(poolServers(second.next)[0]!.map((s) => s.name)).toEqual(["s2", "s3"]);
  });

  it("removes a route's map entry before its servers, and gives its backend to the next new route", () => {
    const first = planTable(emptyPool(1), { version: 1, routes: [route("a.apps.test", 8001)] }, MAPS);
    const second = planTable(first.next, { version: 2, routes: [route("b.apps.test", 9001)] }, MAPS);
    expect(second.reload).toBe(false);
    expect(second.commands).toEqual([`del map ${MAP} a.apps.test/`, "set server b0/s1 state maint", `add server b0/s2 127.0.0.1:9001 ${DYNAMIC_SERVER_OPTIONS}`, "enable server b0/s2", `add map ${MAP} b.apps.test/ b0`]);
    expect(second.retire).toEqual(["b0/s1"]);
  });

  it("keeps a route without instances in the idle map (503) until one starts, and puts it back there when the last leaves", () => {
    const idle = planTable(emptyPool(1), { version: 1, routes: [route("idle.apps.test")] }, MAPS);
    expect(idle.commands).toEqual([`add map ${IDLE} idle.apps.test/ none`]);
    expect(mapFiles(idle.next)).toEqual({ routes: "", idle: "idle.apps.test/ none\n" });
    const up = planTable(idle.next, { version: 2, routes: [route("idle.apps.test", 8001)] }, MAPS);
    expect(up.commands).toEqual([`add server b0/s1 127.0.0.1:8001 ${DYNAMIC_SERVER_OPTIONS}`, "enable server b0/s1", `add map ${MAP} idle.apps.test/ b0`, `del map ${IDLE} idle.apps.test/`]);
    const down = planTable(up.next, { version: 3, routes: [route("idle.apps.test")] }, MAPS);
    expect(down.commands).toEqual([`add map ${IDLE} idle.apps.test/ none`, `del map ${MAP} idle.apps.test/`, "set server b0/s1 state maint"]);
  });

  it("keys path routes by host, lower-cased path key and a slash, each on a backend of its own", () => {
    const plan = planTable(emptyPool(2), { version: 1, routes: [route("Shop.apps.test", 8001), pathRoute("shop.apps.test", "/API/", 8002)] }, MAPS);
    expect(mapFiles(plan.next).routes).toBe("shop.apps.test/ b0\nshop.apps.test/api/ b1\n");
  });

  it("asks for a reload with a doubled pool when the routes outnumber the backends", () => {
    const plan = planTable(emptyPool(2), { version: 1, routes: [route("a.apps.test", 1), route("b.apps.test", 2), route("c.apps.test", 3)] }, MAPS);
    expect(plan.reload).toBe(true);
    expect(plan.commands).toEqual([]);
    expect(plan.next.slots).toHaveLength(4);
    expect(mapFiles(plan.next).routes).toBe("a.apps.test/ b0\nb.apps.test/ b1\nc.apps.test/ b2\n");
  });

  it("lists an instance once per route however often the table repeats it, IPv6 with its family", () => {
    const table = { version: 1, routes: [{ host: "v6.apps.test", instances: [0, 1].map((index) => ({ instance_guid: `g${index}`, app_guid: "app", address: "::1", port: 8080, index })) }] };
    expect(planTable(emptyPool(1), table, MAPS).commands).toEqual([`add server b0/s1 ipv6@::1:8080 ${DYNAMIC_SERVER_OPTIONS}`, "enable server b0/s1", `add map ${MAP} v6.apps.test/ b0`]);
  });
});
