/**
 * Version channels over WebSockets (the Hibernation API): a cell watches its
 * desired set, a router the route table; each is sent the version on connect
 * and every new one the one notifier announces. Pings are answered by the
 * channel's auto-response.
 */
import { describe, expect, it } from "vitest";
import { env, exports } from "cloudflare:workers";
import { ADMIN, api, createSpace, db } from "./support";
import { enroll } from "./cell-fixtures";
import { nextMessage, openSocket } from "./log-fixtures";
import { notifyChannels } from "../../worker/scheduling/long-poll";
import { versionBumps } from "../../worker/scheduling/versions";
import { echoCloseCode } from "../../worker/durable/close-socket";

const nextText = (ws: WebSocket) => new Promise<string>((resolve) => ws.addEventListener("message", (e) => resolve(e.data as string), { once: true }));

describe("version channel watches", () => {
  it("tells a cell its desired-set version on connect and each new one", async () => {
    const cell = await enroll("cell");
    const set = await api("GET", `/v3/cells/${cell.guid}/desired`, { token: cell.credential });
    const ws = await openSocket(`/v3/cells/${cell.guid}/desired/watch`, cell.credential);
    expect(await nextMessage(ws)).toEqual({ version: set.json.version });
    const next = nextMessage(ws);
    await db().batch(versionBumps(db(), { cells: [cell.guid] }).statements as [never]);
    await notifyChannels(env, [{ kind: "cell", cellGuid: cell.guid }]);
    expect(await next).toEqual({ version: set.json.version + 1 });
    const pong = nextText(ws);
    ws.send("ping");
    expect(await pong).toBe("pong");
    ws.close(1000, "done");
  });

  it("is sent the version a write read back, as the write made it, without the channel reading D1 for it", async () => {
    const cell = await enroll("cell");
    const ws = await openSocket(`/v3/cells/${cell.guid}/desired/watch`, cell.credential);
    const first = (await nextMessage(ws)) as { version: number };
    // Cells' sets and the route table, bumped in one batch that reads back what it made.
    const bumps = versionBumps(db(), { cells: [cell.guid], routes: true });
    const moved = bumps.movedIn(await db().batch(bumps.statements as [never]));
    const routes = await api("GET", "/v3/routes/table", { token: ADMIN });
    expect(moved).toEqual([{ kind: "cell", cellGuid: cell.guid, version: first.version + 1 }, { kind: "routes_table", version: routes.json.version }]);
    const next = nextMessage(ws);
    await notifyChannels(env, moved);
    expect(await next).toEqual({ version: first.version + 1 });
    // What the channel sends is the carried version, not one it read: a version D1 never had shows it.
    const carried = nextMessage(ws);
    await notifyChannels(env, [{ kind: "cell", cellGuid: cell.guid, version: first.version + 1000 }]);
    expect(await carried).toEqual({ version: first.version + 1000 });
    ws.close(1000, "done");
  });

  it("refuses another cell's credential, an admin and a plain GET", async () => {
    const a = await enroll("cell");
    const b = await enroll("cell");
    const upgrade = (token: string) => exports.default.fetch(`https://berth.test/v3/cells/${a.guid}/desired/watch`, { headers: { upgrade: "websocket", authorization: `Bearer ${token}` } });
    expect((await upgrade(b.credential)).status).toBe(403);
    expect((await upgrade(ADMIN)).status).toBe(403);
    const plain = await api("GET", `/v3/cells/${a.guid}/desired/watch`, { token: a.credential });
    expect(plain.status).toBe(400);
    expect(plain.json.errors[0].title).toBe("CF-InvalidRequest");
  });

  it("tells a router when a route edit moves the table", async () => {
    const router = await enroll("router");
    const table = await api("GET", "/v3/routes/table", { token: router.credential });
    const ws = await openSocket("/v3/routes/table/watch", router.credential);
    expect(await nextMessage(ws)).toEqual({ version: table.json.version });
    const next = nextMessage(ws);
    const space = await createSpace();
    const route = await api("POST", "/v3/routes", { token: ADMIN, body: { host: `w${Date.now()}`, relationships: { space: { data: { guid: space.guid } } } } });
    expect(route.status).toBe(201);
    // Only the delete names the table to the notifier; the create moved the version too.
    expect((await api("DELETE", `/v3/routes/${route.json.guid}`, { token: ADMIN })).status).toBe(202);
    expect((await next).version).toBeGreaterThan(table.json.version);
    ws.close(1000, "done");
    expect((await api("GET", "/v3/routes/table/watch", { token: (await enroll("cell")).credential })).status).toBe(403);
  });
});

describe("answering a close", () => {
  it("echoes a sendable code and answers a reserved one (no status, abnormal, TLS) with 1000", () => {
    expect([1000, 1001, 1011, 4001].map(echoCloseCode)).toEqual([1000, 1001, 1011, 4001]);
    expect([1004, 1005, 1006, 1015, 2000, 5000].map(echoCloseCode)).toEqual([1000, 1000, 1000, 1000, 1000, 1000]);
  });
});
