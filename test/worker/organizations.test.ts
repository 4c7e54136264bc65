/**
 * Organizations through the Worker: admins create them, spaces belong to one
 * (`relationships.organization`, `?organization_guids=`), and a user sees only
 * the organizations where they hold a role.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_ORGANIZATION_GUID } from "../../worker/db/organizations";
import { ADMIN, addDeveloper, api, createCell, createSpace, createUser, unique } from "./support";

let member: { guid: string; token: string };
let outsider: { guid: string; token: string };

beforeAll(async () => {
  member = await createUser();
  outsider = await createUser();
  const space = await createSpace();
  await addDeveloper(member.guid, space.guid);
});

const createOrg = async (name = unique("org")) => {
  const res = await api("POST", "/v3/organizations", { token: ADMIN, body: { name } });
  expect(res.status).toBe(201);
  return res.json as { guid: string; name: string };
};

describe("organizations", () => {
  it("an admin creates one; it answers CC's shape and is found by name", async () => {
    const name = unique("org");
    const org = await createOrg(name);
    expect(org).toMatchObject({ name, suspended: false, links: { self: { href: `https://berth.test/v3/organizations/${org.guid}` } } });
    const got = await api("GET", `/v3/organizations?names=${name}`, { token: ADMIN });
    expect(got.json.resources.map((o: { guid: string }) => o.guid)).toEqual([org.guid]);
    expect((await api("GET", `/v3/organizations/${org.guid}`, { token: ADMIN })).json.name).toBe(name);
  });

  it("a taken name is 422 in the words the cf CLI recognises", async () => {
    const org = await createOrg();
    const dup = await api("POST", "/v3/organizations", { token: ADMIN, body: { name: org.name } });
    expect(dup.status).toBe(422);
    expect(dup.json.errors[0].detail).toBe(`Organization '${org.name}' already exists.`);
  });

  it("bad names and unknown fields are 422, nothing created", async () => {
    for (const body of [{ name: "" }, { name: " x" }, { name: "a\u0007b" }, { name: "x".repeat(256) }, { name: "ok", colour: "red" }, {}]) {
      expect((await api("POST", "/v3/organizations", { token: ADMIN, body })).status, JSON.stringify(body)).toBe(422);
    }
  });

  it("only admins create organizations", async () => {
    expect((await api("POST", "/v3/organizations", { token: member.token, body: { name: unique("o") } })).status).toBe(403);
    expect((await api("POST", "/v3/organizations", { token: (await createCell()).token, body: { name: unique("o") } })).status).toBe(403);
    expect((await api("POST", "/v3/organizations", { body: { name: unique("o") } })).status).toBe(401);
  });

  it("a member sees the organization of their space and nothing else; others are 404", async () => {
    const other = await createOrg();
    const mine = await api("GET", "/v3/organizations?per_page=5000", { token: member.token });
    expect(mine.json.resources.map((o: { guid: string }) => o.guid)).toEqual([DEFAULT_ORGANIZATION_GUID]);
    expect((await api("GET", `/v3/organizations/${other.guid}`, { token: member.token })).status).toBe(404);
    expect((await api("GET", "/v3/organizations", { token: outsider.token })).json.resources).toEqual([]);
    expect((await api("GET", `/v3/organizations/${DEFAULT_ORGANIZATION_GUID}`, { token: outsider.token })).status).toBe(404);
  });
});

describe("isolation segments (Berth has none)", () => {
  it("an organization's default segment is none, and only its members may ask", async () => {
    const res = await api("GET", `/v3/organizations/${DEFAULT_ORGANIZATION_GUID}/relationships/default_isolation_segment`, { token: member.token });
    expect(res.status).toBe(200);
    expect(res.json.data).toBeNull();
    expect((await api("GET", `/v3/organizations/${DEFAULT_ORGANIZATION_GUID}/relationships/default_isolation_segment`, { token: outsider.token })).status).toBe(404);
  });

  it("the segment list is empty; a malformed query is 422 and no token is 401", async () => {
    const res = await api("GET", `/v3/isolation_segments?organization_guids=${DEFAULT_ORGANIZATION_GUID}`, { token: member.token });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ pagination: { total_results: 0 }, resources: [] });
    expect((await api("GET", "/v3/isolation_segments?page=0", { token: member.token })).status).toBe(422);
    expect((await api("GET", "/v3/isolation_segments?colour=red", { token: member.token })).status).toBe(422);
    expect((await api("GET", "/v3/isolation_segments")).status).toBe(401);
  });
});

describe("spaces in organizations", () => {
  it("a space is created in the organization named, with its relationship, and filtered by it", async () => {
    const org = await createOrg();
    const res = await api("POST", "/v3/spaces", { token: ADMIN, body: { name: "dev", relationships: { organization: { data: { guid: org.guid } } } } });
    expect(res.status).toBe(201);
    expect(res.json.relationships.organization).toEqual({ data: { guid: org.guid } });
    expect(res.json.links.organization).toEqual({ href: `https://berth.test/v3/organizations/${org.guid}` });
    const listed = await api("GET", `/v3/spaces?organization_guids=${org.guid}&names=dev`, { token: ADMIN });
    expect(listed.json.resources.map((s: { guid: string }) => s.guid)).toEqual([res.json.guid]);
  });

  it("space names are unique per organization, not across them (CC's rule and wording)", async () => {
    const [a, b] = [await createOrg(), await createOrg()];
    const make = (org: string) => api("POST", "/v3/spaces", { token: ADMIN, body: { name: "shared-name", relationships: { organization: { data: { guid: org } } } } });
    expect((await make(a.guid)).status).toBe(201);
    expect((await make(b.guid)).status).toBe(201);
    const dup = await make(a.guid);
    expect(dup.status).toBe(422);
    expect(dup.json.errors[0].detail).toBe("Name must be unique per organization");
  });

  it("a space without an organization goes into the default one", async () => {
    const res = await api("POST", "/v3/spaces", { token: ADMIN, body: { name: unique("s") } });
    expect(res.status).toBe(201);
    expect(res.json.relationships.organization).toEqual({ data: { guid: DEFAULT_ORGANIZATION_GUID } });
  });

  it("an unknown organization is 422 and creates nothing", async () => {
    const name = unique("s");
    const res = await api("POST", "/v3/spaces", { token: ADMIN, body: { name, relationships: { organization: { data: { guid: "nope" } } } } });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toMatch(/Invalid organization/);
    expect((await api("GET", `/v3/spaces?names=${name}`, { token: ADMIN })).json.resources).toEqual([]);
  });
});
