import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { openSecret, packageAad } from "../../worker/crypto/secrets";
import * as schema from "../../worker/db/schema";
import { dockerSpaceWithDeveloper, makeApp } from "./app-fixtures";
import { ADMIN, api, createSpace, createUser, db } from "./support";

let space: { guid: string; name: string };
let dev: { guid: string; token: string };
let app: { guid: string; name: string };

beforeAll(async () => {
  ({ space, dev } = await dockerSpaceWithDeveloper());
  app = await makeApp(space.guid, dev.token);
});

const body = (appGuid: string, data: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}) => ({
  type: "docker", relationships: { app: { data: { guid: appGuid } } }, ...(data ? { data } : {}), ...extra,
});

describe("POST /v3/packages", () => {
  it("creates a READY docker package in CC's shape", async () => {
    const res = await api("POST", "/v3/packages", { token: dev.token, body: body(app.guid, { image: "registry.test:5000/team/app:1" }) });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      type: "docker", state: "READY", data: { image: "registry.test:5000/team/app:1", username: null, password: null },
      metadata: { labels: {}, annotations: {} },
      links: { self: { href: `https://berth.test/v3/packages/${res.json.guid}` }, app: { href: `https://berth.test/v3/apps/${app.guid}` } },
    });
    expect(res.json.created_at).toMatch(/Z$/);
  });

  it("seals the registry password, shows *** and never returns or records it", async () => {
    const password = `s3cret-${crypto.randomUUID()}`;
    const res = await api("POST", "/v3/packages", { token: dev.token, body: body(app.guid, { image: "private.test/app", username: "robot", password }) });
    expect(res.status).toBe(201);
    expect(res.json.data).toEqual({ image: "private.test/app", username: "robot", password: "***" });
    const [row] = await db().select().from(schema.packages).where(eq(schema.packages.guid, res.json.guid));
    expect(row!.passwordEncrypted).toMatch(/^v1:[0-9a-f]{8}:[A-Za-z0-9+/=]+$/);
    expect(row!.passwordEncrypted).not.toContain(password);
    expect(await openSecret(env.ENCRYPTION_KEY, row!.passwordEncrypted!, packageAad(res.json.guid))).toBe(password);
    // Bound to this package: the same ciphertext on another package does not open.
    await expect(openSecret(env.ENCRYPTION_KEY, row!.passwordEncrypted!, packageAad(crypto.randomUUID()))).rejects.toThrow(/failed authentication/);
    for (const path of [`/v3/packages/${res.json.guid}`, `/v3/packages?app_guids=${app.guid}`, `/v3/apps/${app.guid}/packages`]) {
      const got = await api("GET", path, { token: dev.token });
      expect(JSON.stringify(got.json)).not.toContain(password);
    }
    const events = await db().select().from(schema.auditEvents);
    expect(JSON.stringify(events)).not.toContain(password);
  });

  it.each([
    ["a bits package", { type: "bits" }, undefined, "Cannot create bits package for a Docker app."],
    ["an unknown type", { type: "buildpack" }, { image: "x" }, "type"],
    ["no data", {}, undefined, "data: required for a docker package (data.image)"],
    ["no image", {}, { username: "u", password: "p" }, "data.image"],
    ["an extra data key", {}, { image: "x", registry: "r" }, "Unknown field(s): 'data.registry'"],
    ["an extra top-level key", { state: "READY" }, { image: "x" }, "Unknown field(s): 'state'"],
    ["a username without a password", {}, { image: "x", username: "u" }, "data: username and password must be given together"],
    ["an image with spaces", {}, { image: "a b" }, "data.image: must not contain whitespace"],
    ["a non-string image", {}, { image: 7 }, "data.image"],
  ])("refuses %s with 422", async (_what, extra, data, detail) => {
    const res = await api("POST", "/v3/packages", { token: dev.token, body: body(app.guid, data as Record<string, unknown> | undefined, extra) });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].detail).toContain(detail);
  });

  it("refuses an unknown app or one outside the developer's spaces with CF's 422", async () => {
    const outside = await makeApp((await createSpace()).guid);
    for (const guid of [crypto.randomUUID(), outside.guid]) {
      const res = await api("POST", "/v3/packages", { token: dev.token, body: body(guid, { image: "x" }) });
      expect(res.status).toBe(422);
      expect(res.json.errors[0].detail).toBe("App is invalid. Ensure it exists and you have access to it.");
    }
  });
});

describe("GET /v3/packages", () => {
  it("gets one, lists with filters, and hides other spaces", async () => {
    const other = await makeApp(space.guid);
    const a = await api("POST", "/v3/packages", { token: dev.token, body: body(other.guid, { image: "one" }) });
    const b = await api("POST", "/v3/packages", { token: dev.token, body: body(other.guid, { image: "two" }) });
    expect((await api("GET", `/v3/packages/${a.json.guid}`, { token: dev.token })).json.data.image).toBe("one");
    const list = await api("GET", `/v3/packages?app_guids=${other.guid}&states=READY&types=docker`, { token: dev.token });
    expect(list.json.resources.map((p: any) => p.guid)).toEqual([a.json.guid, b.json.guid]);
    expect((await api("GET", `/v3/packages?app_guids=${other.guid}&states=FAILED`, { token: dev.token })).json.resources).toEqual([]);

    const outsider = await createUser();
    expect((await api("GET", `/v3/packages/${a.json.guid}`, { token: outsider.token })).status).toBe(404);
    expect((await api("GET", `/v3/packages?app_guids=${other.guid}`, { token: outsider.token })).json.resources).toEqual([]);
    const missing = await api("GET", `/v3/packages/${crypto.randomUUID()}`, { token: ADMIN });
    expect(missing.status).toBe(404);
    expect(missing.json.errors[0].detail).toBe("Package not found");
    expect((await api("GET", "/v3/packages?per_page=abc", { token: ADMIN })).status).toBe(422);
  });
});
