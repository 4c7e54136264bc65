import { beforeAll, describe, expect, it } from "vitest";
import { dockerSpaceWithDeveloper, makeApp } from "./app-fixtures";
import { ADMIN, api } from "./support";

let space: { guid: string; name: string };
let dev: { guid: string; token: string };

beforeAll(async () => {
  ({ space, dev } = await dockerSpaceWithDeveloper());
});

const patch = (appGuid: string, vars: Record<string, unknown>, token = dev.token) =>
  api("PATCH", `/v3/apps/${appGuid}/environment_variables`, { token, body: { var: vars } });

describe("environment variables", () => {
  it("reads them in CC's shape", async () => {
    const app = await makeApp(space.guid, dev.token);
    const res = await api("GET", `/v3/apps/${app.guid}/environment_variables`, { token: dev.token });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      var: {},
      links: {
        self: { href: `https://berth.test/v3/apps/${app.guid}/environment_variables` },
        app: { href: `https://berth.test/v3/apps/${app.guid}` },
      },
    });
  });

  it("merges keys, overwrites values and deletes with null (RFC 7396)", async () => {
    const app = await makeApp(space.guid, dev.token);
    expect((await patch(app.guid, { A: "1", B: "2" })).json.var).toEqual({ A: "1", B: "2" });
    expect((await patch(app.guid, { B: "3", C: "4" })).json.var).toEqual({ A: "1", B: "3", C: "4" });
    const del = await patch(app.guid, { A: null, MISSING: null });
    expect(del.status).toBe(200);
    expect(del.json.var).toEqual({ B: "3", C: "4" });
    // A value that looks like JSON stays a string.
    expect((await patch(app.guid, { J: '{"x":null}' })).json.var.J).toBe('{"x":null}');
    expect((await api("GET", `/v3/apps/${app.guid}/environment_variables`, { token: dev.token })).json.var).toEqual({ B: "3", C: "4", J: '{"x":null}' });
  });

  it("keeps all 20 keys of 20 parallel PATCHes", async () => {
    const app = await makeApp(space.guid, dev.token);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => patch(app.guid, { [`K${i}`]: `v${i}` })));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    const res = await api("GET", `/v3/apps/${app.guid}/environment_variables`, { token: dev.token });
    expect(res.json.var).toEqual(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`K${i}`, `v${i}`])));
  });

  it.each([
    ["a VCAP_ name", { VCAP_APPLICATION: "x" }, "var.VCAP_APPLICATION: cannot start with VCAP_"],
    ["PORT", { PORT: "8080" }, "var.PORT: cannot set PORT"],
    ["an empty name", { "": "x" }, "key must not be empty"],
    ["a name with =", { "A=B": "x" }, "must not contain '=' or NUL"],
    ["a number value", { N: 1 }, "var.N"],
    ["an object value", { O: { a: 1 } }, "var.O"],
  ])("refuses %s with 422 naming it", async (_what, vars, detail) => {
    const app = await makeApp(space.guid, dev.token);
    const res = await patch(app.guid, vars);
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toContain(detail);
    expect((await api("GET", `/v3/apps/${app.guid}/environment_variables`, { token: dev.token })).json.var).toEqual({});
  });

  it("allows names that only resemble reserved ones", async () => {
    const app = await makeApp(space.guid, dev.token);
    expect((await patch(app.guid, { vcap_x: "1", PORTS: "2", MY_VCAP_: "3" })).status).toBe(200);
  });

  it("refuses a body without var, with extra keys, or not an object", async () => {
    const app = await makeApp(space.guid, dev.token);
    for (const body of [{}, { var: {}, extra: 1 }, { var: "A=1" }, []]) {
      const res = await api("PATCH", `/v3/apps/${app.guid}/environment_variables`, { token: dev.token, body });
      expect(res.status).toBe(422);
    }
  });

  it("refuses a merge that would grow past the size cap, keeping the old vars", async () => {
    const app = await makeApp(space.guid, dev.token);
    const chunk = "x".repeat(100 * 1024);
    expect((await patch(app.guid, { BIG1: chunk })).status).toBe(200);
    const res = await patch(app.guid, { BIG2: chunk });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toBe("Environment variables would exceed 131072 bytes.");
    const now = await api("GET", `/v3/apps/${app.guid}/environment_variables`, { token: dev.token });
    expect(Object.keys(now.json.var)).toEqual(["BIG1"]);
  });

  it("counts bytes, not characters, and applies the cap at creation too", async () => {
    const app = await makeApp(space.guid, dev.token);
    // 50,000 three-byte characters: 150,000 bytes of JSON, under the cap in characters only.
    const res = await patch(app.guid, { WIDE: "€".repeat(50_000) });
    expect(res.status).toBe(422);
    const create = await api("POST", "/v3/apps", {
      token: dev.token,
      body: { name: `big-${crypto.randomUUID()}`, relationships: { space: { data: { guid: space.guid } } }, environment_variables: { BIG: "x".repeat(140 * 1024) } },
    });
    expect(create.status).toBe(422);
    expect(create.json.errors[0].detail).toBe("Environment variables would exceed 131072 bytes.");
  });

  it("answers 404 for an unknown app", async () => {
    expect((await patch(crypto.randomUUID(), { A: "1" }, ADMIN)).status).toBe(404);
    expect((await api("GET", `/v3/apps/${crypto.randomUUID()}/environment_variables`, { token: ADMIN })).status).toBe(404);
  });
});
