/**
 * Migrations against data: each migration is applied to a database holding what
 * the one before it allowed, and nothing existing may be lost.
 */
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_ORGANIZATION_GUID } from "../../worker/db/organizations";

const migrations = env.TEST_MIGRATIONS;
const d1 = env.MIGRATION_DB;
const all = async (sql: string) => (await d1.prepare(sql).all()).results as Record<string, unknown>[];

describe("0001_organizations", () => {
  it("moves every space into the default organization and keeps users, roles, apps and routes", async () => {
    await applyD1Migrations(d1, migrations.filter((m) => m.name.startsWith("0000")));
    await d1.batch([
      d1.prepare("INSERT INTO users (guid, name, admin, token_hash) VALUES ('u1', 'ann', 0, 'h1'), ('u2', 'bob', 1, 'h2'), ('u3', 'cy', 0, 'h3')"),
      d1.prepare("INSERT INTO spaces (guid, name) VALUES ('s1', 'dev'), ('s2', 'prod')"),
      d1.prepare("INSERT INTO roles (guid, type, user_guid, space_guid) VALUES ('r1', 'space_developer', 'u1', 's1'), ('r2', 'space_developer', 'u1', 's2'), ('r3', 'space_developer', 'u3', 's2')"),
      d1.prepare("INSERT INTO apps (guid, name, space_guid, state, lifecycle_type) VALUES ('a1', 'web', 's1', 'STARTED', 'docker')"),
      d1.prepare("INSERT INTO routes (guid, host, domain, space_guid) VALUES ('rt1', 'web', 'apps.localhost', 's1')"),
    ]);

    await applyD1Migrations(d1, migrations);

    expect(await all("SELECT guid, name FROM organizations")).toEqual([{ guid: DEFAULT_ORGANIZATION_GUID, name: "default" }]);
    expect(await all("SELECT guid, name, organization_guid FROM spaces ORDER BY guid")).toEqual([
      { guid: "s1", name: "dev", organization_guid: DEFAULT_ORGANIZATION_GUID },
      { guid: "s2", name: "prod", organization_guid: DEFAULT_ORGANIZATION_GUID },
    ]);
    expect(await all("SELECT guid, name, admin, token_hash, password_hash FROM users ORDER BY guid")).toEqual([
      { guid: "u1", name: "ann", admin: 0, token_hash: "h1", password_hash: null },
      { guid: "u2", name: "bob", admin: 1, token_hash: "h2", password_hash: null },
      { guid: "u3", name: "cy", admin: 0, token_hash: "h3", password_hash: null },
    ]);
    // Every space role kept, and each holder an organization_user of the default organization.
    expect(await all("SELECT guid, type, user_guid, organization_guid, space_guid FROM roles WHERE space_guid IS NOT NULL ORDER BY guid")).toEqual([
      { guid: "r1", type: "space_developer", user_guid: "u1", organization_guid: DEFAULT_ORGANIZATION_GUID, space_guid: "s1" },
      { guid: "r2", type: "space_developer", user_guid: "u1", organization_guid: DEFAULT_ORGANIZATION_GUID, space_guid: "s2" },
      { guid: "r3", type: "space_developer", user_guid: "u3", organization_guid: DEFAULT_ORGANIZATION_GUID, space_guid: "s2" },
    ]);
    const orgRoles = await all("SELECT guid, type, user_guid, organization_guid FROM roles WHERE space_guid IS NULL ORDER BY user_guid");
    expect(orgRoles.map(({ guid: _, ...r }) => r)).toEqual([
      { type: "organization_user", user_guid: "u1", organization_guid: DEFAULT_ORGANIZATION_GUID },
      { type: "organization_user", user_guid: "u3", organization_guid: DEFAULT_ORGANIZATION_GUID },
    ]);
    for (const r of orgRoles) expect(r.guid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await all("SELECT guid, space_guid FROM apps")).toEqual([{ guid: "a1", space_guid: "s1" }]);
    expect(await all("SELECT guid, space_guid FROM routes")).toEqual([{ guid: "rt1", space_guid: "s1" }]);
    expect(await all("SELECT name FROM sqlite_master WHERE name LIKE '\\_\\_%' ESCAPE '\\'")).toEqual([]);
    expect(await all("PRAGMA foreign_key_check")).toEqual([]);
    // The rebuilt tables still cascade: deleting a user takes its roles.
    await d1.prepare("DELETE FROM users WHERE guid = 'u3'").run();
    expect(await all("SELECT guid FROM roles WHERE user_guid = 'u3'")).toEqual([]);
  });
});
