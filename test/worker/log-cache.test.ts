/**
 * The Log Cache read API the cf CLI reads (`cf logs --recent`, the polling
 * live `cf logs`): envelopes in Log Cache's JSON over the app's log store.
 */
import { describe, expect, it } from "vitest";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";
import { appWithInstanceOn, line, nextMessage, openSocket } from "./log-fixtures";
import { addDeveloper, api, createCell, createUser } from "./support";

async function appWithLines(n: number, extra: (i: number) => object = () => ({})) {
  const cell = await createCell();
  const { space, appGuid, instanceGuid } = await appWithInstanceOn(cell.guid);
  const dev = await createUser();
  await addDeveloper(dev.guid, space.guid);
  const ship = await openSocket(`/v3/cells/${cell.guid}/apps/${appGuid}/logs`, cell.token);
  const ack = nextMessage(ship);
  ship.send(JSON.stringify({ protocol: PROTOCOL_VERSION, lines: Array.from({ length: n }, (_, i) => line(instanceGuid, i, extra(i))) }));
  await ack;
  ship.close(1000);
  return { appGuid, dev };
}

const payloads = (batch: { log: { payload: string } }[]) => batch.map((e) => atob(e.log.payload));

describe("GET /api/v1/read/:source_id", () => {
  it("answers Log Cache's envelopes: nanosecond times as strings, base64 payloads, OUT/ERR, APP/PROC/WEB", async () => {
    const { appGuid, dev } = await appWithLines(3, (i) => (i === 2 ? { stream: "stderr" } : {}));
    const res = await api("GET", `/api/v1/read/${appGuid}?envelope_types=LOG&limit=1000`, { token: dev.token });
    expect(res.status).toBe(200);
    const batch = res.json.envelopes.batch;
    expect(payloads(batch)).toEqual(["line 0", "line 1", "line 2"]);
    expect(batch[0]).toMatchObject({ source_id: appGuid, instance_id: "0", tags: { source_type: "APP/PROC/WEB" }, log: { type: "OUT" } });
    expect(batch[2].log.type).toBe("ERR");
    expect(batch[0].timestamp).toMatch(/^1700000000000\d{6}$/);
  });

  it("descending with a limit gives the newest first (cf logs --recent); start_time after the last time gives nothing new (the poll)", async () => {
    const { appGuid, dev } = await appWithLines(5);
    const recent = (await api("GET", `/api/v1/read/${appGuid}?descending=true&limit=2`, { token: dev.token })).json.envelopes.batch;
    expect(payloads(recent)).toEqual(["line 4", "line 3"]);
    const from = BigInt(recent[1].timestamp);
    const after = (await api("GET", `/api/v1/read/${appGuid}?start_time=${from}`, { token: dev.token })).json.envelopes.batch;
    expect(payloads(after)).toEqual(["line 3", "line 4"]);
    const none = (await api("GET", `/api/v1/read/${appGuid}?start_time=${BigInt(recent[0].timestamp) + 1n}`, { token: dev.token })).json.envelopes.batch;
    expect(none).toEqual([]);
    const upTo = (await api("GET", `/api/v1/read/${appGuid}?end_time=${from}`, { token: dev.token })).json.envelopes.batch;
    expect(payloads(upTo)).toEqual(["line 0", "line 1", "line 2"]);
  });

  it("other envelope types find nothing; bad parameters are 422", async () => {
    const { appGuid, dev } = await appWithLines(1);
    expect((await api("GET", `/api/v1/read/${appGuid}?envelope_types=GAUGE`, { token: dev.token })).json.envelopes.batch).toEqual([]);
    expect((await api("GET", `/api/v1/read/${appGuid}?start_time=yesterday`, { token: dev.token })).status).toBe(422);
    // Go's zero time, as the cf CLI sends it for --recent, reads from the start.
    expect((await api("GET", `/api/v1/read/${appGuid}?start_time=-6795364578871345152`, { token: dev.token })).json.envelopes.batch).toHaveLength(1);
    expect((await api("GET", `/api/v1/read/${appGuid}?limit=5000`, { token: dev.token })).status).toBe(422);
  });

  it("another tenant reading an app's logs by its guid gets 404; anonymous 401", async () => {
    const { appGuid } = await appWithLines(1);
    const outsider = await createUser();
    expect((await api("GET", `/api/v1/read/${appGuid}`, { token: outsider.token })).status).toBe(404);
    expect((await api("GET", `/api/v1/read/${appGuid}`)).status).toBe(401);
  });
});
