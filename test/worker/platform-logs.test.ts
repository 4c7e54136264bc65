/**
 * The platform's lines in an app's logs, as the cf CLI reads them from the
 * Log Cache API: RTR lines a router sends, CELL lines a cell ships beside the
 * app's own, each with CF's source_type and instance.
 */
import { describe, expect, it } from "vitest";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";
import { appWithInstanceOn, line, mapRoute, nextMessage, openSocket, rtr } from "./log-fixtures";
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
