/**
 * The router's long-poll client against the real control plane (`wrangler
 * dev`, local D1): the Worker's answer parses with the shared schema, and an
 * unchanged table is a held poll ending in 204 (null). An admin token stands
 * in for a router's, which the endpoint also accepts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpTableSource, RouteTableError } from "../../agent/router/table-source";
import { startControlPlane, type ControlPlane } from "../support/control-plane";

let cp: ControlPlane;
beforeAll(async () => {
  cp = await startControlPlane({ vars: { LONG_POLL_HOLD_MS: "300" } });
}, 180_000);
afterAll(async () => {
  await cp?.stop();
});

describe("GET /v3/routes/table on the real Worker", () => {
  it("gives a table, then holds an unchanged poll and answers 204", async () => {
    const source = httpTableSource({ apiUrl: cp.url, token: cp.adminToken, requestTimeoutMs: 10_000 });
    const signal = new AbortController().signal;
    const table = await source(undefined, signal);
    expect(table).not.toBeNull();
    expect(table!.routes).toEqual([]);
    const started = Date.now();
    expect(await source(table!.version, signal)).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it("surfaces a refused token as a RouteTableError with the status", async () => {
    const source = httpTableSource({ apiUrl: cp.url, token: "not-a-token", requestTimeoutMs: 10_000 });
    const failure = source(undefined, new AbortController().signal);
    await expect(failure).rejects.toBeInstanceOf(RouteTableError);
    await expect(failure).rejects.toMatchObject({ status: 401 });
  });
});
