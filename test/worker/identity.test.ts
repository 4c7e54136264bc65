/**
 * Identity through the Worker: discovery documents, users, spaces and roles,
 * each with the role matrix (admin, member developer, other developer, cell,
 * router, anonymous, bad token) and the bad-input paths.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { hashToken } from "../../worker/auth/tokens";
import { appsUrl } from "../../worker/routes/root";
import { ADMIN, addDeveloper, api, createCell, createRouter, createSpace, createUser, db, unique } from "./support";
import { users } from "../../worker/db/schema";
import { DEFAULT_ORGANIZATION_GUID } from "../../worker/db/organizations";
import { eq } from "drizzle-orm";

const NOT_AUTHENTICATED = { errors: [{ code: 10002, title: "CF-NotAuthenticated", detail: "Authentication error" }] };
const INVALID_TOKEN = { errors: [{ code: 1000, title: "CF-InvalidAuthToken", detail: "Invalid Auth Token" }] };
const NOT_AUTHORIZED = { errors: [{ code: 10003, title: "CF-NotAuthorized", detail: "You are not authorized to perform the requested action" }] };

let member: { guid: string; token: string };
let outsider: { guid: string; token: string };
let cell: { token: string };
let router: { token: string };
let space: { guid: string; name: string };

beforeAll(async () => {
  member = await createUser();
  outsider = await createUser();
  cell = await createCell();
  router = await createRouter();
  space = await createSpace();
  await addDeveloper(member.guid, space.guid);
});

const detail = (res: { json: any }) => res.json.errors[0].detail as string;

describe("discovery", () => {
  it("GET / is public and links the v3 API, with the apps domain", async () => {
    const res = await api("GET", "/");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      name: "berth",
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      apps_domain: "apps.localhost",
      apps_scheme: "http",
      apps_port: null,
      links: {
        self: { href: "https://berth.test" },
        cloud_controller_v3: { href: "https://berth.test/v3", meta: { version: expect.any(String) } },
        info: { href: "https://berth.test/v3/info" },
      },
    });
  });

  it("GET /v3 links every v3 resource", async () => {
    const res = await api("GET", "/v3");
    expect(res.status).toBe(200);
    expect(res.json.links.apps).toEqual({ href: "https://berth.test/v3/apps" });
    expect(res.json.links.feature_flags).toEqual({ href: "https://berth.test/v3/feature_flags" });
    expect(res.json.links.self).toEqual({ href: "https://berth.test/v3" });
    // Every advertised resource answers (401 without a token, or 200 when public), never 404.
    for (const [name, l] of Object.entries(res.json.links as Record<string, { href: string }>)) {
      const r = await api("GET", new URL(l.href).pathname);
      expect([200, 401], name).toContain(r.status);
    }
  });

  it("GET /v3/info is public, even with a token", async () => {
    for (const token of [undefined, member.token, cell.token]) {
      const res = await api("GET", "/v3/info", { token });
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ name: "berth", apps_domain: "apps.localhost", apps_scheme: "http", apps_port: null, links: { self: { href: "https://berth.test/v3/info" } } });
    }
  });

  it("says where apps answer: APPS_SCHEME and APPS_PORT, ignoring what is not a scheme or a port", () => {
    const domain = { APPS_DOMAIN: "apps.example" };
    expect(appsUrl({ ...domain, APPS_SCHEME: "https" })).toEqual({ apps_domain: "apps.example", apps_scheme: "https", apps_port: null });
    expect(appsUrl({ ...domain, APPS_PORT: "8080" })).toEqual({ apps_domain: "apps.example", apps_scheme: "http", apps_port: 8080 });
    for (const port of ["", "80a", "65536", "-1", "1.5"]) expect(appsUrl({ ...domain, APPS_PORT: port }).apps_port).toBeNull();
    expect(appsUrl({ ...domain, APPS_SCHEME: "gopher" }).apps_scheme).toBe("http");
  });

  it("a bad token is refused even on public documents", async () => {
    const res = await api("GET", "/v3/info", { token: "bu_not-a-real-token" });
    expect(res.status).toBe(401);
    expect(res.json).toEqual(INVALID_TOKEN);
  });
});

describe("users", () => {
  it("an admin creates a user; the token is shown once and stored hashed", async () => {
    const name = unique("dev");
    const res = await api("POST", "/v3/users", { token: ADMIN, body: { name } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ username: name, name, presentation_name: name, admin: false, origin: "uaa", links: { self: { href: `https://berth.test/v3/users/${res.json.guid}` } } });
    expect(res.json.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(res.json.token).toMatch(/^bu_[A-Za-z0-9_-]{43}$/);
    const [row] = await db().select().from(users).where(eq(users.guid, res.json.guid));
    expect(row!.tokenHash).toBe(await hashToken(res.json.token));
    expect(JSON.stringify(row)).not.toContain(res.json.token);
    // The token works, and is never shown again.
    const self = await api("GET", `/v3/users/${res.json.guid}`, { token: res.json.token });
    expect(self.status).toBe(200);
    expect(self.json.token).toBeUndefined();
    const listed = await api("GET", `/v3/users?usernames=${name}`, { token: ADMIN });
    expect(listed.json.resources).toHaveLength(1);
    expect(listed.json.resources[0].token).toBeUndefined();
  });

  it("an admin can create another admin, who can then create users", async () => {
    const res = await api("POST", "/v3/users", { token: ADMIN, body: { name: unique("ops"), admin: true } });
    expect(res.status).toBe(201);
    expect(res.json.admin).toBe(true);
    const again = await api("POST", "/v3/users", { token: res.json.token, body: { name: unique("dev") } });
    expect(again.status).toBe(201);
  });

  it("a taken name is a 422", async () => {
    const name = unique("dup");
    expect((await api("POST", "/v3/users", { token: ADMIN, body: { name } })).status).toBe(201);
    const res = await api("POST", "/v3/users", { token: ADMIN, body: { name } });
    expect(res.status).toBe(422);
    expect(res.json.errors[0]).toMatchObject({ code: 10008, title: "CF-UnprocessableEntity", detail: `User with name '${name}' already exists.` });
  });

  it.each([
    [{}, "name:"],
    [{ name: "" }, "name:"],
    [{ name: "has space" }, "name:"],
    [{ name: "x".repeat(256) }, "name:"],
    [{ name: 5 }, "name:"],
    [{ name: "ok", admin: "yes" }, "admin:"],
    [{ name: "ok", role: "admin" }, "Unknown field(s): 'role'"],
    [[], "expected object"],
  ])("rejects body %j with a 422 naming the problem", async (body, text) => {
    const res = await api("POST", "/v3/users", { token: ADMIN, body });
    expect(res.status).toBe(422);
    expect(detail(res)).toContain(text);
  });

  it("malformed JSON is a 400 and an oversized body a 413", async () => {
    const bad = await api("POST", "/v3/users", { token: ADMIN, raw: '{"name":' });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].title).toBe("CF-MessageParseError");
    const big = await api("POST", "/v3/users", { token: ADMIN, body: { name: "x".repeat(300 * 1024) } });
    expect(big.status).toBe(413);
    expect(big.json.errors[0].title).toBe("CF-RequestEntityTooLarge");
  });

  it("role matrix for creating and listing users", async () => {
    const body = { name: unique("nope") };
    expect((await api("POST", "/v3/users", { body })).json).toEqual(NOT_AUTHENTICATED);
    expect((await api("POST", "/v3/users", { body, token: "garbage token" })).json).toEqual(INVALID_TOKEN);
    for (const token of [member.token, outsider.token, cell.token, router.token]) {
      const res = await api("POST", "/v3/users", { body, token });
      expect(res.status).toBe(403);
      expect(res.json).toEqual(NOT_AUTHORIZED);
    }
    for (const token of [cell.token, router.token]) expect((await api("GET", "/v3/users", { token })).status).toBe(403);
    // A user lists themselves and those who share an organization with them (CC), never the rest.
    const seen = async (token: string) => (await api("GET", "/v3/users?per_page=5000", { token })).json.resources.map((u: { guid: string }) => u.guid);
    expect(await seen(outsider.token)).toEqual([outsider.guid]);
    expect(await seen(member.token)).toContain(member.guid);
    expect(await seen(member.token)).not.toContain(outsider.guid);
    expect((await api("GET", "/v3/users")).status).toBe(401);
  });

  it("lists users paginated and ordered", async () => {
    const names = [unique("pa"), unique("pb"), unique("pc")];
    for (const name of names) await api("POST", "/v3/users", { token: ADMIN, body: { name } });
    const res = await api("GET", `/v3/users?usernames=${names.join(",")}&per_page=2&order_by=-username`, { token: ADMIN });
    expect(res.status).toBe(200);
    expect(res.json.pagination).toMatchObject({ total_results: 3, total_pages: 2, previous: null });
    expect(res.json.resources.map((u: any) => u.username)).toEqual([names[2], names[1]]);
    const next = await fetchNext(res.json.pagination.next.href);
    expect(next.resources.map((u: any) => u.username)).toEqual([names[0]]);
    expect(next.pagination.next).toBeNull();
  });

  it("rejects bad list queries with a 422", async () => {
    for (const q of ["per_page=0", "per_page=5001", "page=x", "order_by=name", "usernames=", "colour=red"]) {
      const res = await api("GET", `/v3/users?${q}`, { token: ADMIN });
      expect(res.status, q).toBe(422);
    }
  });

  it("a user reads only their own record; others get 404, cells 403", async () => {
    expect((await api("GET", `/v3/users/${member.guid}`, { token: member.token })).json.guid).toBe(member.guid);
    expect((await api("GET", `/v3/users/${member.guid}`, { token: ADMIN })).status).toBe(200);
    const other = await api("GET", `/v3/users/${member.guid}`, { token: outsider.token });
    expect(other.status).toBe(404);
    expect(other.json.errors[0]).toEqual({ code: 10010, title: "CF-ResourceNotFound", detail: "User not found" });
    expect((await api("GET", `/v3/users/${crypto.randomUUID()}`, { token: ADMIN })).status).toBe(404);
    expect((await api("GET", `/v3/users/${member.guid}`, { token: cell.token })).status).toBe(403);
    expect((await api("GET", `/v3/users/${member.guid}`)).status).toBe(401);
  });

  it("records audit.user.create", async () => {
    const res = await api("POST", "/v3/users", { token: ADMIN, body: { name: unique("audited") } });
    const events = await api("GET", `/v3/audit_events?types=audit.user.create&target_guids=${res.json.guid}`, { token: ADMIN });
    expect(events.json.resources).toHaveLength(1);
    expect(events.json.resources[0]).toMatchObject({ actor: { guid: "admin", type: "user", name: "admin" }, target: { type: "user", guid: res.json.guid } });
  });
});

async function fetchNext(href: string) {
  const u = new URL(href);
  return (await api("GET", u.pathname + u.search, { token: ADMIN })).json;
}

describe("spaces", () => {
  it("an admin creates a space", async () => {
    const name = unique("sp");
    const res = await api("POST", "/v3/spaces", { token: ADMIN, body: { name } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ name, relationships: {}, links: { self: { href: `https://berth.test/v3/spaces/${res.json.guid}` } } });
    expect((await api("GET", `/v3/spaces/${res.json.guid}`, { token: ADMIN })).json.name).toBe(name);
  });

  it("a duplicate name is 422; bad bodies are 422", async () => {
    const name = unique("sp");
    await api("POST", "/v3/spaces", { token: ADMIN, body: { name } });
    const dup = await api("POST", "/v3/spaces", { token: ADMIN, body: { name } });
    expect(dup.status).toBe(422);
    expect(detail(dup)).toBe("Name must be unique per organization");
    for (const [body, text] of [[{}, "name:"], [{ name: " pad" }, "whitespace"], [{ name: "a\u0007b" }, "control"], [{ name: "x", org: "o" }, "'org'"]] as const) {
      const res = await api("POST", "/v3/spaces", { token: ADMIN, body });
      expect(res.status).toBe(422);
      expect(detail(res)).toContain(text);
    }
  });

  it("role matrix for creating spaces", async () => {
    expect((await api("POST", "/v3/spaces", { body: { name: "x" } })).json).toEqual(NOT_AUTHENTICATED);
    expect((await api("POST", "/v3/spaces", { body: { name: "x" }, token: "bad" })).json).toEqual(INVALID_TOKEN);
    // The member sees the default organization but does not manage it; the outsider does not see it (422, as CC).
    for (const token of [member.token, cell.token, router.token]) {
      expect((await api("POST", "/v3/spaces", { body: { name: "x" }, token })).json).toEqual(NOT_AUTHORIZED);
    }
    expect((await api("POST", "/v3/spaces", { body: { name: "x" }, token: outsider.token })).status).toBe(422);
  });

  it("a developer sees only their spaces; others get 404", async () => {
    const mine = await api("GET", "/v3/spaces", { token: member.token });
    expect(mine.status).toBe(200);
    expect(mine.json.resources.map((s: any) => s.guid)).toEqual([space.guid]);
    expect((await api("GET", "/v3/spaces", { token: outsider.token })).json).toMatchObject({ pagination: { total_results: 0 }, resources: [] });
    expect((await api("GET", `/v3/spaces/${space.guid}`, { token: member.token })).status).toBe(200);
    const hidden = await api("GET", `/v3/spaces/${space.guid}`, { token: outsider.token });
    expect(hidden.status).toBe(404);
    expect(detail(hidden)).toBe("Space not found");
    for (const token of [cell.token, router.token]) expect((await api("GET", "/v3/spaces", { token })).status).toBe(403);
    expect((await api("GET", `/v3/spaces/${space.guid}`)).status).toBe(401);
  });

  it("admins list every space, filtered and ordered", async () => {
    const a = await createSpace(unique("zz-a"));
    const b = await createSpace(unique("zz-b"));
    const res = await api("GET", `/v3/spaces?names=${a.name},${b.name}&order_by=-name`, { token: ADMIN });
    expect(res.json.resources.map((s: any) => s.name)).toEqual([b.name, a.name]);
    const byGuid = await api("GET", `/v3/spaces?guids=${a.guid}`, { token: ADMIN });
    expect(byGuid.json.resources.map((s: any) => s.guid)).toEqual([a.guid]);
    expect((await api("GET", "/v3/spaces?order_by=size", { token: ADMIN })).status).toBe(422);
  });
});

describe("roles", () => {
  const roleBody = (user: string, sp: string, type = "space_developer") => ({
    type,
    relationships: { user: { data: { guid: user } }, space: { data: { guid: sp } } },
  });
  /** CC: a space role needs an organization role in the space's organization first. */
  const joinDefaultOrg = (user: string) =>
    api("POST", "/v3/roles", { token: ADMIN, body: { type: "organization_user", relationships: { user: { data: { guid: user } }, organization: { data: { guid: DEFAULT_ORGANIZATION_GUID } } } } });

  it("an admin makes a user a space developer, who then sees the space", async () => {
    const user = await createUser();
    const sp = await createSpace();
    const refused = await api("POST", "/v3/roles", { token: ADMIN, body: roleBody(user.guid, sp.guid) });
    expect(refused.status).toBe(422);
    expect(detail(refused)).toBe("Users cannot be assigned roles in a space if they do not have a role in that space's organization.");
    expect((await joinDefaultOrg(user.guid)).status).toBe(201);
    const res = await api("POST", "/v3/roles", { token: ADMIN, body: roleBody(user.guid, sp.guid) });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      type: "space_developer",
      relationships: { user: { data: { guid: user.guid } }, space: { data: { guid: sp.guid } }, organization: { data: null } },
      links: { self: { href: `https://berth.test/v3/roles/${res.json.guid}` }, user: { href: `https://berth.test/v3/users/${user.guid}` } },
    });
    expect((await api("GET", `/v3/spaces/${sp.guid}`, { token: user.token })).status).toBe(200);
    expect((await api("GET", `/v3/roles/${res.json.guid}`, { token: user.token })).status).toBe(200);
    expect((await api("GET", `/v3/roles/${res.json.guid}`, { token: outsider.token })).status).toBe(404);
  });

  it("a duplicate role is a 422 in CC's words", async () => {
    const user = await createUser({ name: unique("dupuser") });
    const sp = await createSpace();
    await joinDefaultOrg(user.guid);
    await api("POST", "/v3/roles", { token: ADMIN, body: roleBody(user.guid, sp.guid) });
    const res = await api("POST", "/v3/roles", { token: ADMIN, body: roleBody(user.guid, sp.guid) });
    expect(res.status).toBe(422);
    expect(detail(res)).toMatch(/^User 'dupuser-.*' already has 'space_developer' role in space '.*'\.$/);
  });

  it("an unknown user or space is a 422", async () => {
    const u = await api("POST", "/v3/roles", { token: ADMIN, body: roleBody(crypto.randomUUID(), space.guid) });
    expect(u.status).toBe(422);
    expect(detail(u)).toBe("Invalid user. Ensure that the user exists and you have access to it.");
    const s = await api("POST", "/v3/roles", { token: ADMIN, body: roleBody(member.guid, crypto.randomUUID()) });
    expect(s.status).toBe(422);
    expect(detail(s)).toBe("Invalid space. Ensure that the space exists and you have access to it.");
  });

  it("bad role bodies are 422", async () => {
    const cases: [unknown, string][] = [
      [roleBody(member.guid, space.guid, "org_manager"), "type:"],
      [{ type: "space_developer" }, "relationships:"],
      [{ type: "space_developer", relationships: { user: { data: { guid: member.guid } } } }, "Space roles need relationships.space"],
      [{ type: "organization_user", relationships: { user: { data: { guid: member.guid } }, space: { data: { guid: space.guid } } } }, "Organization roles need relationships.organization"],
      [{ ...roleBody(member.guid, space.guid), extra: 1 }, "'extra'"],
      [{ type: "space_developer", relationships: { user: { data: { guid: member.guid, name: "x" } }, space: { data: { guid: space.guid } } } }, "relationships.user.data"],
    ];
    for (const [body, text] of cases) {
      const res = await api("POST", "/v3/roles", { token: ADMIN, body });
      expect(res.status).toBe(422);
      expect(detail(res)).toContain(text);
    }
  });

  it("malformed or oversized bodies are 4xx on every create", async () => {
    for (const path of ["/v3/spaces", "/v3/roles"]) {
      const bad = await api("POST", path, { token: ADMIN, raw: "{\"type\":" });
      expect(bad.status, path).toBe(400);
      expect(bad.json.errors[0].code).toBe(1001);
      const big = await api("POST", path, { token: ADMIN, body: { name: "x".repeat(300 * 1024) } });
      expect(big.status, path).toBe(413);
      const notObject = await api("POST", path, { token: ADMIN, raw: "\"space\"" });
      expect(notObject.status, path).toBe(422);
    }
  });

  it("role matrix for creating roles", async () => {
    const body = roleBody(outsider.guid, space.guid);
    expect((await api("POST", "/v3/roles", { body })).json).toEqual(NOT_AUTHENTICATED);
    expect((await api("POST", "/v3/roles", { body, token: "bad" })).json).toEqual(INVALID_TOKEN);
    // The member sees the space but does not manage it; the outsider does not see it (422).
    for (const token of [member.token, cell.token, router.token]) {
      expect((await api("POST", "/v3/roles", { body, token })).json).toEqual(NOT_AUTHORIZED);
    }
    expect((await api("POST", "/v3/roles", { body, token: outsider.token })).status).toBe(422);
  });

  it("lists roles: admins all, developers those of their spaces, with filters", async () => {
    const all = await api("GET", `/v3/roles?space_guids=${space.guid}`, { token: ADMIN });
    expect(all.json.resources.map((r: any) => r.relationships.user.data.guid)).toEqual([member.guid]);
    const mine = await api("GET", "/v3/roles", { token: member.token });
    // Space roles of their space, and organization roles of the organization they belong to.
    expect(mine.json.resources.every((r: any) => r.relationships.space.data?.guid === space.guid || r.relationships.organization.data?.guid === DEFAULT_ORGANIZATION_GUID)).toBe(true);
    expect((await api("GET", "/v3/roles", { token: outsider.token })).json.resources).toEqual([]);
    expect((await api("GET", `/v3/roles?user_guids=${member.guid}&types=space_developer`, { token: ADMIN })).json.pagination.total_results).toBe(1);
    expect((await api("GET", "/v3/roles?types=space_boss", { token: ADMIN })).status).toBe(422);
    expect((await api("GET", "/v3/roles", { token: cell.token })).status).toBe(403);
    expect((await api("GET", "/v3/roles")).status).toBe(401);
  });
});
