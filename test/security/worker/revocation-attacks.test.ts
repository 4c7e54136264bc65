/**
 * Credentials an admin takes back stop working at once (issue 15, item 6),
 * inside workerd against the real D1: an enrollment token past its expiry
 * (1 h by default) or revoked enrolls nothing, and is listed with that
 * state; a deleted router's credential is refused on its next request, and
 * a router or cell removed while its long-poll is held gets a 401, not an answer.
 * Time passing is a row's expiry set in the past, as the clock would make it.
 */
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { PROTOCOL_VERSION } from "../../../shared/protocol/version";
import * as schema from "../../../worker/db/schema";
import { env } from "cloudflare:workers";
import { notifyChannels } from "../../../worker/scheduling/long-poll";
import { enroll } from "../../worker/cell-fixtures";
import { ADMIN, api, createUser, db, unique } from "../../worker/support";

interface TokenInfo { guid: string; kind: string; state: string; created_at: string; expires_at: string; used_at: string | null; revoked_at: string | null; token?: string }

async function enrollmentToken(kind: "cell" | "router"): Promise<TokenInfo & { token: string }> {
  const res = await api("POST", "/v3/cells/enrollment_tokens", { token: ADMIN, body: { kind } });
  expect(res.status, JSON.stringify(res.json)).toBe(201);
  return res.json;
}

const registerRouter = (token: string) => api("POST", "/v3/cells/register", { body: { protocol: PROTOCOL_VERSION, enrollment_token: token, name: unique("router") } });

async function listed(guid: string): Promise<TokenInfo | undefined> {
  const res = await api("GET", "/v3/cells/enrollment_tokens?per_page=5000", { token: ADMIN });
  expect(res.status).toBe(200);
  return (res.json.resources as TokenInfo[]).find((t) => t.guid === guid);
}

describe("enrollment tokens", () => {
  it("live an hour by default and are listed, without the token, as active then used", async () => {
    const t = await enrollmentToken("router");
    expect(Date.parse(t.expires_at) - Date.parse(t.created_at)).toBe(60 * 60 * 1000);
    expect(await listed(t.guid)).toEqual({ guid: t.guid, kind: "router", state: "active", created_at: t.created_at, expires_at: t.expires_at, used_at: null, revoked_at: null });
    expect((await registerRouter(t.token)).status).toBe(201);
    expect(await listed(t.guid)).toMatchObject({ state: "used", used_at: expect.any(String) });
  });

  it("an enrollment token past its expiry enrolls nothing and is listed as expired", async () => {
    const t = await enrollmentToken("router");
    await db().update(schema.enrollmentTokens).set({ expiresAt: new Date(Date.now() - 1000).toISOString() }).where(eq(schema.enrollmentTokens.guid, t.guid));
    const res = await registerRouter(t.token);
    expect(res.status).toBe(401);
    expect(res.json.errors[0].title).toBe("CF-InvalidAuthToken");
    expect(await listed(t.guid)).toMatchObject({ state: "expired", used_at: null });
  });

  it("a revoked enrollment token enrolls nothing, at once, and is listed as revoked", async () => {
    const t = await enrollmentToken("cell");
    const dev = await createUser();
    expect((await api("DELETE", `/v3/cells/enrollment_tokens/${t.guid}`, { token: dev.token })).status).toBe(403);
    expect((await api("DELETE", `/v3/cells/enrollment_tokens/${t.guid}`, { token: ADMIN })).status).toBe(204);
    const res = await api("POST", "/v3/cells/register", { body: {
      protocol: PROTOCOL_VERSION, enrollment_token: t.token, name: unique("cell"), zone: "z1", address: "10.0.0.9",
      capacity: { memory_mb: 1024, disk_mb: 1024, containers: 4 },
    } });
    expect(res.status).toBe(401);
    expect(await listed(t.guid)).toMatchObject({ state: "revoked", revoked_at: expect.any(String) });
    // Revoking again changes nothing; an unknown guid is 404.
    expect((await api("DELETE", `/v3/cells/enrollment_tokens/${t.guid}`, { token: ADMIN })).status).toBe(204);
    expect((await api("DELETE", `/v3/cells/enrollment_tokens/${crypto.randomUUID()}`, { token: ADMIN })).status).toBe(404);
  });

  it("a used enrollment token cannot be revoked: the admin is told to delete what it enrolled", async () => {
    const t = await enrollmentToken("router");
    expect((await registerRouter(t.token)).status).toBe(201);
    const res = await api("DELETE", `/v3/cells/enrollment_tokens/${t.guid}`, { token: ADMIN });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toMatch(/already used: delete the cell or router it enrolled/);
  });
});

describe("router credentials", () => {
  it("a deleted router's credential stops working at its next request", async () => {
    const registered = (await registerRouter((await enrollmentToken("router")).token)).json as { guid: string; credential: string };
    expect((await api("GET", "/v3/routes/table", { token: registered.credential })).status).toBe(200);
    const routers = await api("GET", "/v3/routers?per_page=5000", { token: ADMIN });
    expect(routers.json.resources.map((r: { guid: string }) => r.guid)).toContain(registered.guid);
    expect((await api("DELETE", `/v3/routers/${registered.guid}`, { token: registered.credential })).status).toBe(403);
    expect((await api("DELETE", `/v3/routers/${registered.guid}`, { token: ADMIN })).status).toBe(204);
    const after = await api("GET", "/v3/routes/table", { token: registered.credential });
    expect(after.status).toBe(401);
    expect(after.json.errors[0].title).toBe("CF-InvalidAuthToken");
    expect((await api("DELETE", `/v3/routers/${registered.guid}`, { token: ADMIN })).status).toBe(404);
  });

  it("a router deleted while its long-poll is held gets a 401 when the hold ends, not one more answer", async () => {
    // The hold is LONG_POLL_HOLD_MS (300 ms here): a round counts only when the delete finished while the poll was still held.
    for (let round = 0; round < 5; round++) {
      const registered = (await registerRouter((await enrollmentToken("router")).token)).json as { guid: string; credential: string };
      const { version } = (await api("GET", "/v3/routes/table", { token: registered.credential })).json as { version: number };
      let settled = false;
      const poll = api("GET", `/v3/routes/table?after=${version}`, { token: registered.credential }).finally(() => { settled = true; });
      expect((await api("DELETE", `/v3/routers/${registered.guid}`, { token: ADMIN })).status).toBe(204);
      if (settled) { await poll; continue; }
      const answer = await poll;
      expect(answer.status).toBe(401);
      expect(answer.json.errors[0].title).toBe("CF-InvalidAuthToken");
      return;
    }
    throw new Error("the delete never finished within a held poll in 5 rounds");
  });
});

describe("cell credentials", () => {
  it("a cell forgotten while its desired-set poll is held gets a 401 when the hold ends, whether or not its set moved", async () => {
    // As for routers: a round counts only when the cell was forgotten while its poll was still held (300 ms here).
    for (const moved of [false, true]) {
      let answered = false;
      for (let round = 0; round < 5 && !answered; round++) {
        const cell = await enroll("cell");
        const { version } = (await api("GET", `/v3/cells/${cell.guid}/desired`, { token: cell.credential })).json as { version: number };
        let settled = false;
        const poll = api("GET", `/v3/cells/${cell.guid}/desired?after=${version}`, { token: cell.credential }).finally(() => { settled = true; });
        // Forgotten as DELETE /v3/cells/:id forgets a silent cell (its row gone), while the poll waits.
        await db().delete(schema.cells).where(eq(schema.cells.guid, cell.guid));
        if (settled) { await poll; continue; }
        if (moved) await notifyChannels(env, [{ kind: "cell", cellGuid: cell.guid }]);
        const answer = await poll;
        expect(answer.status, `set moved: ${moved}`).toBe(401);
        expect(answer.json.errors[0].title).toBe("CF-InvalidAuthToken");
        answered = true;
      }
      expect(answered, `the cell was never forgotten within a held poll in 5 rounds (set moved: ${moved})`).toBe(true);
    }
  });
});
