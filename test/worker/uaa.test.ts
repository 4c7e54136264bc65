/**
 * The UAA-compatible endpoints inside the Worker, as the cf CLI uses them:
 * prompts, the password / refresh_token / client_credentials grants, the JWTs
 * and their checks (forgery, expiry, revocation, rotation), SCIM users and
 * password changes, and the login lockout.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signJwt, signingKeys } from "../../worker/auth/jwt";
import { isLocked } from "../../worker/auth/lockout";
import { failuresOf, recordFailure } from "../../worker/db/login-failures";
import { ADMIN, api, createUser, db, unique } from "./support";

const ADMIN_PASSWORD = "test-admin-password";
const CF_BASIC = `Basic ${btoa("cf:")}`;

async function token(form: Record<string, string>, opts: { basic?: string | null; env?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
  if (opts.basic !== null) headers.authorization = opts.basic ?? CF_BASIC;
  const init = { method: "POST", headers, body: new URLSearchParams(form).toString() };
  const res = opts.env
    ? await (await import("../../worker/index")).app.request("/uaa/oauth/token", init, { ...env, ...opts.env })
    : await exports.default.fetch("https://berth.test/uaa/oauth/token", init);
  return { status: res.status, json: (await res.json()) as any };
}

const login = (username: string, password: string) => token({ grant_type: "password", username, password });
const claimsOf = (jwt: string) => JSON.parse(atob(jwt.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/"))) as Record<string, any>;

async function makePasswordUser(password = "s3cret-pass") {
  const name = unique("u");
  const res = await api("POST", "/uaa/Users", { token: ADMIN, body: { userName: name, password, origin: "uaa", name: { givenName: name, familyName: name }, emails: [{ value: name, primary: true }] } });
  expect(res.status).toBe(201);
  return { guid: res.json.id as string, name, password };
}

describe("discovery and prompts", () => {
  it("GET / links login and uaa to this Worker, and a CC API level the CLI accepts", async () => {
    const res = await api("GET", "/");
    expect(res.json.links.login).toEqual({ href: "https://berth.test/uaa" });
    expect(res.json.links.uaa).toEqual({ href: "https://berth.test/uaa" });
    expect(res.json.links.cloud_controller_v3.meta.version).toBe("3.100.0");
  });

  it("GET /uaa/login answers the prompts", async () => {
    const res = await api("GET", "/uaa/login");
    expect(res.json.prompts).toEqual({ username: ["text", "Username"], password: ["password", "Password"] });
  });
});

describe("password grant", () => {
  it("admin signs in with ADMIN_PASSWORD and gets a JWT the API accepts, with the claims the CLI reads", async () => {
    const res = await login("admin", ADMIN_PASSWORD);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ token_type: "bearer", expires_in: 1200, refresh_token: expect.any(String), jti: expect.any(String) });
    const c = claimsOf(res.json.access_token);
    expect(c).toMatchObject({ user_id: "admin", user_name: "admin", origin: "uaa", client_id: "cf", grant_type: "password", revocable: true, jti: res.json.jti });
    expect(c.scope).toContain("cloud_controller.admin");
    expect(c.exp).toBeGreaterThan(Date.now() / 1000);
    const orgs = await api("GET", "/v3/organizations", { token: res.json.access_token });
    expect(orgs.status).toBe(200);
  });

  it("a SCIM-made user signs in; a wrong password, an unknown user or another client is refused", async () => {
    const u = await makePasswordUser();
    const ok = await login(u.name, u.password);
    expect(ok.status).toBe(200);
    expect(claimsOf(ok.json.access_token)).toMatchObject({ user_id: u.guid, user_name: u.name });
    expect((await api("GET", `/v3/users/${u.guid}`, { token: ok.json.access_token })).json.username).toBe(u.name);
    for (const bad of [await login(u.name, "wrong"), await login(unique("nobody"), "x"), await login("admin", "wrong")]) {
      expect(bad.status).toBe(401);
      expect(bad.json).toEqual({ error: "unauthorized", error_description: "Bad credentials" });
    }
    const otherClient = await token({ grant_type: "password", username: u.name, password: u.password }, { basic: `Basic ${btoa("evil:")}` });
    expect(otherClient.status).toBe(401);
    expect((await token({ grant_type: "password", username: u.name }, {})).status).toBe(400);
    expect((await token({ grant_type: "implicit" })).json.error).toBe("unsupported_grant_type");
  });

  it("passwords are stored as PBKDF2 hashes, never as given", async () => {
    const u = await makePasswordUser("plain-text-never-stored");
    const row = await env.DB.prepare("SELECT password_hash FROM users WHERE guid = ?").bind(u.guid).first<{ password_hash: string }>();
    expect(row!.password_hash).toMatch(/^pbkdf2-sha256\$100000\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(row!.password_hash).not.toContain("plain-text");
  });
});

describe("attacks on tokens", () => {
  it("an attacker who forges a token (another key, alg none, edited claims) gets 401 CF-InvalidAuthToken", async () => {
    const real = (await login("admin", ADMIN_PASSWORD)).json.access_token as string;
    const [h, p, s] = real.split(".");
    const forged = await signJwt(await signingKeys({ TOKEN_SIGNING_KEY: "an-attackers-own-key-0123456789abcdef" }), { ...claimsOf(real) });
    const none = `${btoa(JSON.stringify({ alg: "none", kid: JSON.parse(atob(h!)).kid })).replace(/=+$/, "")}.${p}.`;
    const edited = `${h}.${btoa(JSON.stringify({ ...claimsOf(real), user_id: "someone" })).replace(/=+$/, "")}.${s}`;
    for (const t of [forged, none, edited]) {
      const res = await api("GET", "/v3/organizations", { token: t });
      expect(res.status).toBe(401);
      expect(res.json.errors[0].title).toBe("CF-InvalidAuthToken");
    }
  });

  it("a refresh token is not an access token", async () => {
    const res = await login("admin", ADMIN_PASSWORD);
    expect((await api("GET", "/v3/organizations", { token: res.json.refresh_token })).status).toBe(401);
  });

  it("an expired access token is refused, and the refresh grant gives a working one", async () => {
    const u = await makePasswordUser();
    const short = await token({ grant_type: "password", username: u.name, password: u.password }, { env: { ACCESS_TOKEN_TTL_SECONDS: "1" } });
    expect(short.json.expires_in).toBe(1);
    await new Promise((r) => setTimeout(r, 2100));
    const expired = await api("GET", `/v3/users/${u.guid}`, { token: short.json.access_token });
    expect(expired.status).toBe(401);
    expect(expired.json.errors[0].title).toBe("CF-InvalidAuthToken");
    const refreshed = await token({ grant_type: "refresh_token", refresh_token: short.json.refresh_token });
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.refresh_token).toBe(short.json.refresh_token);
    expect((await api("GET", `/v3/users/${u.guid}`, { token: refreshed.json.access_token })).status).toBe(200);
  });

  it("revoking either jti (cf logout) ends the session: access and refresh tokens both stop working", async () => {
    const u = await makePasswordUser();
    const s = (await login(u.name, u.password)).json;
    const revoke = (jti: string, credential: string) =>
      exports.default.fetch(`https://berth.test/uaa/oauth/token/revoke/${jti}`, { method: "DELETE", headers: { authorization: credential } });
    expect((await revoke(claimsOf(s.refresh_token).jti, `Bearer ${s.refresh_token}`)).status).toBe(200);
    expect((await revoke(s.jti, `Bearer bearer ${s.access_token}`)).status).toBe(200);
    expect((await api("GET", `/v3/users/${u.guid}`, { token: s.access_token })).status).toBe(401);
    expect((await token({ grant_type: "refresh_token", refresh_token: s.refresh_token })).status).toBe(401);
  });

  it("a user cannot revoke another user's session", async () => {
    const [a, b] = [await makePasswordUser(), await makePasswordUser()];
    const sa = (await login(a.name, a.password)).json;
    const sb = (await login(b.name, b.password)).json;
    await exports.default.fetch(`https://berth.test/uaa/oauth/token/revoke/${sa.jti}`, { method: "DELETE", headers: { authorization: `Bearer ${sb.access_token}` } });
    expect((await api("GET", `/v3/users/${a.guid}`, { token: sa.access_token })).status).toBe(200);
  });

  it("tokens signed with a previous key still verify after rotation; new ones use the new key", async () => {
    const { app } = await import("../../worker/index");
    const old = (await login("admin", ADMIN_PASSWORD)).json.access_token as string;
    const rotated = { ...env, TOKEN_SIGNING_KEY: "the-next-signing-key-0123456789abcdef", TOKEN_VERIFICATION_KEYS: "test-token-signing-key-0123456789abcdef" };
    expect((await app.request("/v3/organizations", { headers: { authorization: `bearer ${old}` } }, rotated)).status).toBe(200);
    const dropped = { ...env, TOKEN_SIGNING_KEY: "the-next-signing-key-0123456789abcdef" };
    expect((await app.request("/v3/organizations", { headers: { authorization: `bearer ${old}` } }, dropped)).status).toBe(401);
  });

  it("opaque tokens (cells, routers, the berth CLI) keep working beside JWTs", async () => {
    const robot = await createUser();
    expect((await api("GET", `/v3/users/${robot.guid}`, { token: robot.token })).status).toBe(200);
    expect((await api("GET", "/v3/organizations", { token: ADMIN })).status).toBe(200);
  });
});

describe("client_credentials grant", () => {
  it("a robot user's name and token get a non-revocable JWT without a refresh token; a wrong secret is refused", async () => {
    const name = unique("robot");
    const made = await api("POST", "/v3/users", { token: ADMIN, body: { name } });
    const res = await token({ grant_type: "client_credentials", client_id: name, client_secret: made.json.token }, { basic: null });
    expect(res.status).toBe(200);
    expect(res.json.refresh_token).toBeUndefined();
    expect(claimsOf(res.json.access_token)).toMatchObject({ client_id: name, user_id: made.json.guid, grant_type: "client_credentials", revocable: false });
    expect((await api("GET", `/v3/users/${made.json.guid}`, { token: res.json.access_token })).status).toBe(200);
    expect((await token({ grant_type: "client_credentials", client_id: name, client_secret: "nope" }, { basic: null })).status).toBe(401);
  });
});

describe("lockout", () => {
  it("an attacker guessing a password is locked out after 5 failures, even with the right one; other users are unaffected", async () => {
    const u = await makePasswordUser();
    for (let i = 0; i < 5; i++) expect((await login(u.name, `guess-${i}`)).status).toBe(401);
    const locked = await login(u.name, u.password);
    expect(locked.status).toBe(401);
    expect(locked.json.error_description).toBe("Your account has been locked because of too many failed attempts to login.");
    const other = await makePasswordUser();
    expect((await login(other.name, other.password)).status).toBe(200);
  });

  it("the lock ends with its window, and a failure after it starts a new count (the clock is a parameter)", async () => {
    const d = db();
    const key = `user:${unique("clock")}`;
    const policy = { failures: 5, windowMs: 300_000 };
    for (let t = 0; t < 5; t++) await recordFailure(d, key, 1_000 + t, policy);
    expect(isLocked(await failuresOf(d, key), 1_005, policy)).toBe(true);
    expect(isLocked(await failuresOf(d, key), 1_000 + 299_999, policy)).toBe(true);
    expect(isLocked(await failuresOf(d, key), 1_000 + 300_000, policy)).toBe(false);
    await recordFailure(d, key, 400_000, policy);
    expect(await failuresOf(d, key)).toEqual({ failures: 1, windowStart: 400_000 });
  });
});

describe("SCIM users", () => {
  it("only admins create, list and delete users; duplicates are 409", async () => {
    const u = await makePasswordUser();
    const dup = await api("POST", "/uaa/Users", { token: ADMIN, body: { userName: u.name, password: "x" } });
    expect(dup.status).toBe(409);
    const found = await api("GET", `/uaa/Users?filter=${encodeURIComponent(`userName eq "${u.name}" and origin eq "uaa"`)}`, { token: ADMIN });
    expect(found.json.resources.map((r: { id: string }) => r.id)).toEqual([u.guid]);
    const userToken = (await login(u.name, u.password)).json.access_token;
    expect((await api("POST", "/uaa/Users", { token: userToken, body: { userName: unique("x"), password: "x" } })).status).toBe(403);
    expect((await api("GET", `/uaa/Users?filter=${encodeURIComponent(`userName eq "${u.name}"`)}`, { token: userToken })).status).toBe(403);
    expect((await api("POST", "/uaa/Users", { body: { userName: unique("x"), password: "x" } })).status).toBe(401);
    expect((await api("GET", "/uaa/Users?filter=id%20pr", { token: ADMIN })).status).toBe(400);
    expect((await api("POST", "/uaa/Users", { token: ADMIN, body: { userName: "admin", password: "x" } })).status).toBe(409);
    expect((await api("POST", "/uaa/Users", { token: ADMIN, body: { userName: "bad name", password: "x" } })).status).toBe(400);
    expect((await api("DELETE", `/uaa/Users/${u.guid}`, { token: ADMIN })).status).toBe(200);
    expect((await login(u.name, u.password)).status).toBe(401);
    expect((await api("GET", `/v3/users/${u.guid}`, { token: userToken })).status).toBe(401);
  });

  it("a user changes their own password with the old one, which signs them out everywhere", async () => {
    const u = await makePasswordUser();
    const s = (await login(u.name, u.password)).json;
    const change = (body: unknown, t = s.access_token) => api("PUT", `/uaa/Users/${u.guid}/password`, { token: t, body });
    expect((await change({ oldPassword: "wrong", password: "new-pass" })).status).toBe(401);
    expect((await change({ oldPassword: u.password, password: "new-pass" })).status).toBe(200);
    expect((await api("GET", `/v3/users/${u.guid}`, { token: s.access_token })).status).toBe(401);
    expect((await login(u.name, u.password)).status).toBe(401);
    expect((await login(u.name, "new-pass")).status).toBe(200);
  });

  it("a user cannot change another user's password", async () => {
    const [a, b] = [await makePasswordUser(), await makePasswordUser()];
    const sa = (await login(a.name, a.password)).json;
    expect((await api("PUT", `/uaa/Users/${b.guid}/password`, { token: sa.access_token, body: { oldPassword: b.password, password: "taken-over" } })).status).toBe(403);
    expect((await login(b.name, b.password)).status).toBe(200);
  });

  it("POST /v3/users registers a SCIM user by guid (cf create-user's second call); an unknown guid is 422", async () => {
    const u = await makePasswordUser();
    const res = await api("POST", "/v3/users", { token: ADMIN, body: { guid: u.guid } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ guid: u.guid, username: u.name, origin: "uaa" });
    expect((await api("POST", "/v3/users", { token: ADMIN, body: { guid: "no-such-user" } })).status).toBe(422);
  });
});

describe("sessions", () => {
  it("a sign-in drops the user's expired sessions and keeps the live ones", async () => {
    const u = await makePasswordUser();
    const short = { REFRESH_TOKEN_TTL_SECONDS: "1" };
    await token({ grant_type: "password", username: u.name, password: u.password }, { env: short });
    const live = (await login(u.name, u.password)).json;
    const count = async () => (await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_guid = ?").bind(u.guid).first<{ n: number }>())!.n;
    expect(await count()).toBe(2);
    await new Promise((r) => setTimeout(r, 1100));
    await login(u.name, u.password);
    expect(await count()).toBe(2);
    expect((await api("GET", `/v3/users/${u.guid}`, { token: live.access_token })).status).toBe(200);
  });
});
