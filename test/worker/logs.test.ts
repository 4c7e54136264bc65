import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";
import type { LogLine } from "../../shared/protocol/logs";
import { appWithInstanceOn, line, nextMessage, openSocket } from "./log-fixtures";
import { addDeveloper, api, createCell, createUser } from "./support";

describe("app logs", () => {
  it("a cell ships lines; recent logs show them all, in order; a tail sees new ones", async () => {
    const cell = await createCell();
    const { space, appGuid, instanceGuid } = await appWithInstanceOn(cell.guid);
    const dev = await createUser();
    await addDeveloper(dev.guid, space.guid);

    const tail = await openSocket(`/v3/apps/${appGuid}/logs/tail`, dev.token);
    const tailed = nextMessage(tail);
    const ship = await openSocket(`/v3/cells/${cell.guid}/apps/${appGuid}/logs`, cell.token);
    const ack = nextMessage(ship);
    ship.send(JSON.stringify({ protocol: PROTOCOL_VERSION, lines: [1, 2, 3].map((n) => line(instanceGuid, n)) }));
    expect(await ack).toEqual({ ack: 3 });
    expect((await tailed).lines.map((l: LogLine) => l.line)).toEqual(["line 1", "line 2", "line 3"]);

    const recent = await api("GET", `/v3/apps/${appGuid}/logs`, { token: dev.token });
    expect(recent.status).toBe(200);
    expect(recent.json.lines.map((l: LogLine) => l.line)).toEqual(["line 1", "line 2", "line 3"]);
    ship.close(1000);
    tail.close(1000);
  });

  it("cuts long lines and drops lines over the rate limit, counting both", async () => {
    const cell = await createCell();
    const { appGuid, instanceGuid } = await appWithInstanceOn(cell.guid);
    const ship = await openSocket(`/v3/cells/${cell.guid}/apps/${appGuid}/logs`, cell.token);
    const ack = nextMessage(ship);
    const lines = Array.from({ length: 80 }, (_, n) => line(instanceGuid, n, n === 0 ? { line: "x".repeat(20_000) } : {}));
    ship.send(JSON.stringify({ protocol: PROTOCOL_VERSION, lines }));
    await ack;
    const recent = await api("GET", `/v3/apps/${appGuid}/logs`, { token: "test-admin-token" });
    // LOG_LINES_PER_SECOND is 50 in the test config.
    expect(recent.json.lines).toHaveLength(50);
    expect(recent.json.dropped).toBe(30);
    expect(recent.json.truncated).toBe(1);
    expect(recent.json.lines[0].truncated).toBe(true);
    expect(recent.json.lines[0].line.length).toBe(16 * 1024);
    ship.close(1000);
  });

  it("refuses a malformed batch and keeps nothing of it", async () => {
    const cell = await createCell();
    const { appGuid } = await appWithInstanceOn(cell.guid);
    const ship = await openSocket(`/v3/cells/${cell.guid}/apps/${appGuid}/logs`, cell.token);
    const reply = nextMessage(ship);
    ship.send("{not json");
    expect((await reply).error).toMatch(/invalid log batch/);
    const recent = await api("GET", `/v3/apps/${appGuid}/logs`, { token: "test-admin-token" });
    expect(recent.json.lines).toEqual([]);
    ship.close(1000);
  });

  it("is scoped like apps: outsiders get 404, other cells 403, anonymous 401, plain GETs of sockets 400", async () => {
    const cell = await createCell();
    const other = await createCell();
    const { appGuid } = await appWithInstanceOn(cell.guid);
    const outsider = await createUser();
    expect((await api("GET", `/v3/apps/${appGuid}/logs`, { token: outsider.token })).status).toBe(404);
    expect((await api("GET", `/v3/apps/${appGuid}/logs`)).status).toBe(401);
    expect((await api("GET", `/v3/apps/${appGuid}/logs`, { token: cell.token })).status).toBe(403);
    const res = await exports.default.fetch(`https://berth.test/v3/cells/${other.guid}/apps/${appGuid}/logs`, {
      headers: { upgrade: "websocket", authorization: `Bearer ${other.token}` },
    });
    expect(res.status).toBe(403);
    const spoof = await exports.default.fetch(`https://berth.test/v3/cells/${cell.guid}/apps/${appGuid}/logs`, {
      headers: { upgrade: "websocket", authorization: `Bearer ${other.token}` },
    });
    expect(spoof.status).toBe(403);
    const plain = await api("GET", `/v3/apps/${appGuid}/logs/tail`, { token: "test-admin-token" });
    expect(plain.status).toBe(400);
  });
});
