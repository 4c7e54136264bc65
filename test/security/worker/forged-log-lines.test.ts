/**
 * Nobody but the platform writes the platform's lines into an app's logs: a
 * router only for apps it routes to, a cell only APP and CELL lines, and no
 * user, tenant or cell can pass lines off as the router's (RTR).
 */
import { describe, expect, it } from "vitest";
import { PROTOCOL_VERSION } from "../../../shared/protocol/version";
import { appWithInstanceOn, line, mapRoute, nextMessage, openSocket, rtr } from "../../worker/log-fixtures";
import { addDeveloper, api, createCell, createRouter, createUser } from "../../worker/support";

const recentLines = async (appGuid: string) => (await api("GET", `/v3/apps/${appGuid}/logs`, { token: "test-admin-token" })).json.lines;

describe("forged platform log lines", () => {
  it("a router writing access lines into an app it does not route to (no route mapped) is refused, line by line, and nothing is kept", async () => {
    const router = await createRouter();
    const cell = await createCell();
    const routed = await appWithInstanceOn(cell.guid);
    await mapRoute(routed.appGuid, routed.space.guid);
    const unrouted = await appWithInstanceOn(cell.guid);
    const res = await api("POST", "/v3/routers/logs", {
      token: router.token,
      body: { protocol: PROTOCOL_VERSION, lines: [rtr(unrouted.appGuid, unrouted.instanceGuid, "forged"), rtr(routed.appGuid, routed.instanceGuid, "real"), rtr("no-such-app", "x", "forged")] },
    });
    expect(res.json).toEqual({ accepted: 1, refused: 2 });
    expect(await recentLines(unrouted.appGuid)).toEqual([]);
    expect((await recentLines(routed.appGuid)).map((l: any) => l.line)).toEqual(["real"]);
  });

  it("a tenant (developer of the app's space), an admin or a cell posting RTR lines gets 403; anonymous 401", async () => {
    const cell = await createCell();
    const { space, appGuid, instanceGuid } = await appWithInstanceOn(cell.guid);
    await mapRoute(appGuid, space.guid);
    const dev = await createUser();
    await addDeveloper(dev.guid, space.guid);
    const body = { protocol: PROTOCOL_VERSION, lines: [rtr(appGuid, instanceGuid, "forged")] };
    for (const token of [dev.token, "test-admin-token", cell.token]) expect((await api("POST", "/v3/routers/logs", { token, body })).status).toBe(403);
    expect((await api("POST", "/v3/routers/logs", { body })).status).toBe(401);
    expect(await recentLines(appGuid)).toEqual([]);
  });

  it("a cell shipping lines marked RTR, API or STG on its socket is refused and keeps nothing; APP and CELL are its own", async () => {
    const cell = await createCell();
    const { appGuid, instanceGuid } = await appWithInstanceOn(cell.guid);
    const ship = await openSocket(`/v3/cells/${cell.guid}/apps/${appGuid}/logs`, cell.token);
    for (const source of ["RTR", "API", "STG"]) {
      const reply = nextMessage(ship);
      ship.send(JSON.stringify({ protocol: PROTOCOL_VERSION, lines: [line(instanceGuid, 1, { line: "forged", source: source as "CELL" })] }));
      expect((await reply).error).toMatch(/invalid log batch/);
    }
    expect(await recentLines(appGuid)).toEqual([]);
    ship.close(1000);
  });

  it("a router's line cannot claim another source: the batch schema has no source field", async () => {
    const router = await createRouter();
    const cell = await createCell();
    const { space, appGuid, instanceGuid } = await appWithInstanceOn(cell.guid);
    await mapRoute(appGuid, space.guid);
    const res = await api("POST", "/v3/routers/logs", { token: router.token, body: { protocol: PROTOCOL_VERSION, lines: [{ ...rtr(appGuid, instanceGuid, "x"), source: "API" }] } });
    expect(res.status).toBe(422);
    expect(await recentLines(appGuid)).toEqual([]);
  });
});
