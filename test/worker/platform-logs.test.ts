import { env } from "cloudflare:workers";
import { appLogStore, platformLine } from "../../worker/logs/app-lines";
import type { Bindings } from "../../worker/env";
/**
 * The platform's lines in an app's logs, as the cf CLI reads them from the
 * Log Cache API: RTR lines a router sends, CELL lines a cell ships beside the
 * app's own, each with CF's source_type and instance.
 */
import { describe, expect, it } from "vitest";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";
import { appWithInstanceOn, line, mapRoute, nextMessage, openSocket, rtr } from "./log-fixtures";
import { dockerSpaceWithDeveloper, makeApp } from "./app-fixtures";
import { addDeveloper, api, createCell, createRouter, createUser } from "./support";

const decode = (e: { log: { payload: string } }) => atob(e.log.payload);

describe("platform log lines", () => {
  it("a router's access lines land as RTR/0 envelopes; a cell's CELL lines as CELL/<index>, beside APP/PROC/WEB", async () => {
    const cell = await createCell();
    const router = await createRouter();
    const { space, appGuid, instanceGuid } = await appWithInstanceOn(cell.guid);
    await mapRoute(appGuid, space.guid);
    const dev = await createUser();
    await addDeveloper(dev.guid, space.guid);

    const ship = await openSocket(`/v3/cells/${cell.guid}/apps/${appGuid}/logs`, cell.token);
    const ack = nextMessage(ship);
    ship.send(JSON.stringify({
      protocol: PROTOCOL_VERSION,
      lines: [
        line(instanceGuid, 1, { source: "CELL", instance_index: 2, line: `Cell ${cell.guid} creating container for instance ${instanceGuid}` }),
        line(instanceGuid, 2, { instance_index: 2, line: "hello from the app" }),
      ],
    }));
    expect(await ack).toEqual({ ack: 2 });
    ship.close(1000);

    const sent = await api("POST", "/v3/routers/logs", {
      token: router.token,
      body: { protocol: PROTOCOL_VERSION, lines: [rtr(appGuid, instanceGuid, 'demo.apps.test - [t] "GET / HTTP/1.1" 200 0 5')] },
    });
    expect(sent.status).toBe(200);
    expect(sent.json).toEqual({ accepted: 1, refused: 0 });

    const batch = (await api("GET", `/api/v1/read/${appGuid}?envelope_types=LOG`, { token: dev.token })).json.envelopes.batch;
    expect(batch.map((e: any) => [e.tags.source_type, e.instance_id, decode(e)])).toEqual([
      ["CELL", "2", `Cell ${cell.guid} creating container for instance ${instanceGuid}`],
      ["APP/PROC/WEB", "2", "hello from the app"],
      ["RTR", "0", 'demo.apps.test - [t] "GET / HTTP/1.1" 200 0 5'],
    ]);
    expect(batch[2]).toMatchObject({ source_id: appGuid, tags: { app_id: appGuid }, log: { type: "OUT" } });
    // The recent-lines API (berth logs) names each line's source too.
    const recent = (await api("GET", `/v3/apps/${appGuid}/logs`, { token: dev.token })).json.lines;
    expect(recent.map((l: any) => l.source ?? "APP")).toEqual(["CELL", "APP", "RTR"]);
  });

  it("a malformed router batch is 422 and keeps nothing", async () => {
    const router = await createRouter();
    const cell = await createCell();
    const { space, appGuid, instanceGuid } = await appWithInstanceOn(cell.guid);
    await mapRoute(appGuid, space.guid);
    const bad = await api("POST", "/v3/routers/logs", { token: router.token, body: { protocol: PROTOCOL_VERSION, lines: [{ ...rtr(appGuid, instanceGuid, "x"), timestamp: "soon" }] } });
    expect(bad.status).toBe(422);
    const recent = await api("GET", `/v3/apps/${appGuid}/logs`, { token: "test-admin-token" });
    expect(recent.json.lines).toEqual([]);
  });
});

describe("API lines", () => {
  it("each change to an app puts CC's line in its logs after it commits: rename, env (values hidden), scale, health check, stop", async () => {
    const { space, dev } = await dockerSpaceWithDeveloper();
    const app = await makeApp(space.guid, dev.token);
    const ok = async (method: string, path: string, body?: unknown) => expect((await api(method, path, { token: dev.token, body })).status).toBeLessThan(300);
    await ok("PATCH", `/v3/apps/${app.guid}`, { name: `${app.name}-2` });
    await ok("PATCH", `/v3/apps/${app.guid}/environment_variables`, { var: { SECRET: "hunter2" } });
    await ok("POST", `/v3/apps/${app.guid}/processes/web/actions/scale`, { instances: 2 });
    await ok("PATCH", `/v3/apps/${app.guid}/processes/web`, { health_check: { type: "process" } });
    await ok("POST", `/v3/apps/${app.guid}/actions/stop`);
    const texts = (await linesOnce(app.guid, dev.token, 6)).map((l) => `${l.source} ${l.line}`);
    expect(texts).toEqual([
      `API Created app with guid ${app.guid}`,
      `API Updated app with guid ${app.guid} ({"name"=>"${app.name}-2"})`,
      `API Updated app with guid ${app.guid} ({"environment_variables"=>"PRIVATE DATA HIDDEN"})`,
      'API Scaling process: "web"',
      'API Updating process: "web"',
      `API Stopping app with guid ${app.guid}`,
    ]);
    expect(JSON.stringify(texts)).not.toContain("hunter2");
  });

  it("a refused change writes no line", async () => {
    const { space, dev } = await dockerSpaceWithDeveloper();
    const app = await makeApp(space.guid, dev.token);
    expect((await api("POST", `/v3/apps/${app.guid}/processes/web/actions/scale`, { token: dev.token, body: { instances: -1 } })).status).toBe(422);
    expect((await api("PATCH", `/v3/apps/${app.guid}`, { token: dev.token, body: { name: "" } })).status).toBe(422);
    expect((await api("POST", `/v3/apps/${app.guid}/actions/stop`, { token: dev.token })).status).toBe(200);
    const lines = (await linesOnce(app.guid, dev.token, 2)).map((l) => l.line);
    expect(lines).toEqual([`Created app with guid ${app.guid}`, `Stopping app with guid ${app.guid}`]);
  });
});

/** The app's lines once there are `n` of them (API lines are written after the response). */
async function linesOnce(appGuid: string, token: string, n: number): Promise<{ source?: string; line: string }[]> {
  for (let i = 0; i < 300; i++) {
    const lines = (await api("GET", `/v3/apps/${appGuid}/logs`, { token })).json.lines;
    if (lines.length >= n) return lines;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`fewer than ${n} lines in ${appGuid}'s logs`);
}

describe("a flood of requests", () => {
  it("an attacker who floods an app with requests for longer than the store's bound does not erase the cell's, API's or the app's own lines", async () => {
    const store = appLogStore(env as unknown as Bindings, `erased-${crypto.randomUUID()}`);
    const start = Date.now();
    await store.ingest([
      { timestamp: start, instance_index: 0, instance_guid: "i", stream: "stdout", line: "app says hello", source: "APP" },
      { timestamp: start, instance_index: 0, instance_guid: "i", stream: "stdout", line: "Exit status 137" , source: "CELL" },
      platformLine("API", "Cancelling deployment for app with guid x", start),
    ], start);
    // LOG_KEEP_LINES is 100 and LOG_LINES_PER_SECOND 50 in the test config: four seconds of 50 requests each.
    for (let s = 1; s <= 4; s++) {
      const now = start + s * 1000;
      await store.ingest(Array.from({ length: 50 }, (_, i) => platformLine("RTR", `GET /${s}/${i}`, now)), now);
    }
    const lines = (await store.recent(1000)).lines;
    expect(lines.map((l) => l.line)).toEqual(expect.arrayContaining(["app says hello", "Exit status 137", "Cancelling deployment for app with guid x"]));
    const rtr = lines.filter((l) => l.source === "RTR").map((l) => l.line);
    expect(rtr).toHaveLength(100);
    expect(rtr[0]).toBe("GET /3/0"); // the oldest requests went, the newest 100 stayed
  });

  it("an attacker who floods an app with requests (RTR lines past the rate limit) does not drop the cell's and API's lines about it", async () => {
    const store = appLogStore(env as unknown as Bindings, `flooded-${crypto.randomUUID()}`);
    const now = Date.now();
    // LOG_LINES_PER_SECOND is 50 in the test config.
    await store.ingest(Array.from({ length: 60 }, (_, i) => platformLine("RTR", `GET /${i}`, now)), now);
    await store.ingest([
      { timestamp: now, instance_index: 0, instance_guid: "i", stream: "stdout", line: "Exit status 137", source: "CELL" },
      platformLine("API", "Restarted app with guid x", now),
    ], now);
    const recent = await store.recent(1000);
    expect(recent.lines.map((l) => l.line)).toEqual(expect.arrayContaining(["Exit status 137", "Restarted app with guid x"]));
    expect(recent.lines.filter((l) => l.source === "RTR")).toHaveLength(50);
    expect(recent.dropped).toBe(10);
  });
});
