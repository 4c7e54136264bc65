/**
 * Test helpers inside workerd: principals are inserted straight into the real D1
 * (so tests of one resource do not depend on the users/spaces endpoints), and
 * requests go through the Worker's own fetch handler.
 */
import { drizzle } from "drizzle-orm/d1";
import { env, exports } from "cloudflare:workers";
import * as schema from "../../worker/db/schema";
import { hashToken, newToken } from "../../worker/auth/tokens";
import { DEFAULT_ORGANIZATION_GUID } from "../../worker/db/organizations";

export const ADMIN = "test-admin-token";
export const db = () => drizzle(env.DB, { schema });

let seq = 0;
/** A unique name for this test file's run (storage is shared within a file). */
export const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++seq}`;

export async function createUser(opts: { admin?: boolean; name?: string } = {}) {
  const token = newToken("user");
  const guid = crypto.randomUUID();
  await db().insert(schema.users).values({ guid, name: opts.name ?? unique("user"), admin: opts.admin ?? false, tokenHash: await hashToken(token) });
  return { guid, token };
}

export async function createSpace(name = unique("space"), organizationGuid = DEFAULT_ORGANIZATION_GUID) {
  const guid = crypto.randomUUID();
  await db().insert(schema.spaces).values({ guid, name, organizationGuid });
  return { guid, name };
}

export async function addDeveloper(userGuid: string, spaceGuid: string, organizationGuid = DEFAULT_ORGANIZATION_GUID) {
  await db().insert(schema.roles).values({ guid: crypto.randomUUID(), type: "space_developer", userGuid, organizationGuid, spaceGuid });
}

/** Any CF role, in the default organization (`spaceGuid` null) or one of its spaces. */
export async function addRole(userGuid: string, type: string, spaceGuid: string | null = null, organizationGuid = DEFAULT_ORGANIZATION_GUID) {
  await db().insert(schema.roles).values({ guid: crypto.randomUUID(), type: type as never, userGuid, organizationGuid, spaceGuid });
}

export async function createCell(opts: { zone?: string; address?: string } = {}) {
  const token = newToken("cell");
  const guid = crypto.randomUUID();
  await db().insert(schema.cells).values({
    guid, name: unique("cell"), zone: opts.zone ?? "z1", address: opts.address ?? "10.0.0.1",
    tokenHash: await hashToken(token), capacity: { memory_mb: 8192, disk_mb: 16384, containers: 50 }, state: "ACTIVE",
  });
  return { guid, token };
}

export async function createRouter() {
  const token = newToken("router");
  const guid = crypto.randomUUID();
  await db().insert(schema.routers).values({ guid, name: unique("router"), tokenHash: await hashToken(token) });
  return { guid, token };
}

/** Calls the Worker; `body` is JSON-encoded. */
export async function api(method: string, path: string, opts: { token?: string; body?: unknown; raw?: string } = {}) {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] = "application/json";
  }
  const res = await exports.default.fetch(`https://berth.test${path}`, { method, headers, body });
  const text = await res.text();
  let json: any = undefined;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = text; }
  return { status: res.status, json, headers: res.headers };
}
