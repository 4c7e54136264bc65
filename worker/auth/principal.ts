/**
 * @module Who is calling. Resolved once per request by the auth middleware and
 * read through `c.var.principal`; the guards below turn a wrong role into CF errors.
 */
import { and, eq } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv, Db } from "../env";
import { cells, roles, routers, users } from "../db/schema";
import { invalidAuthToken, notAuthenticated, notAuthorized } from "../errors";
import { hashToken } from "./tokens";

export type Principal =
  | { kind: "user"; guid: string; name: string; admin: boolean }
  | { kind: "cell"; guid: string; name: string }
  | { kind: "router"; guid: string; name: string }
  | { kind: "anonymous" };

/** The bootstrap admin (Worker secret ADMIN_TOKEN) has no row; this is its identity. */
export const BOOTSTRAP_ADMIN = { kind: "user", guid: "admin", name: "admin", admin: true } as const;

function timingSafeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Maps an Authorization header to a principal; throws 401 for a malformed or unknown token. */
export async function resolvePrincipal(db: Db, header: string | undefined, adminToken: string): Promise<Principal> {
  if (!header) return { kind: "anonymous" };
  const m = /^bearer\s+([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim());
  if (!m) throw invalidAuthToken();
  const hash = await hashToken(m[1]!);
  if (adminToken && timingSafeEqualHex(hash, await hashToken(adminToken))) return BOOTSTRAP_ADMIN;
  const [user] = await db.select().from(users).where(eq(users.tokenHash, hash)).limit(1);
  if (user) return { kind: "user", guid: user.guid, name: user.name, admin: user.admin };
  const [cell] = await db.select().from(cells).where(eq(cells.tokenHash, hash)).limit(1);
  if (cell) return { kind: "cell", guid: cell.guid, name: cell.name };
  const [router] = await db.select().from(routers).where(eq(routers.tokenHash, hash)).limit(1);
  if (router) return { kind: "router", guid: router.guid, name: router.name };
  throw invalidAuthToken();
}

type UserPrincipal = Extract<Principal, { kind: "user" }>;

/** Any authenticated caller. */
export function requireAuthenticated(c: Context<AppEnv>): Exclude<Principal, { kind: "anonymous" }> {
  const p = c.var.principal;
  if (p.kind === "anonymous") throw notAuthenticated();
  return p;
}

/** A person (admin or developer); cells and routers get 403. */
export function requireUser(c: Context<AppEnv>): UserPrincipal {
  const p = requireAuthenticated(c);
  if (p.kind !== "user") throw notAuthorized();
  return p;
}

export function requireAdmin(c: Context<AppEnv>): UserPrincipal {
  const p = requireUser(c);
  if (!p.admin) throw notAuthorized();
  return p;
}

export function requireCell(c: Context<AppEnv>, cellGuid?: string): Extract<Principal, { kind: "cell" }> {
  const p = requireAuthenticated(c);
  if (p.kind !== "cell" || (cellGuid !== undefined && p.guid !== cellGuid)) throw notAuthorized();
  return p;
}

export function requireRouter(c: Context<AppEnv>): Principal {
  const p = requireAuthenticated(c);
  if (p.kind === "router" || (p.kind === "user" && p.admin)) return p;
  throw notAuthorized();
}

/** Whether a user is admin or a developer of the space (CF answers 404, not 403, to outsiders). */
export async function canAccessSpace(db: Db, p: UserPrincipal, spaceGuid: string): Promise<boolean> {
  if (p.admin) return true;
  const [row] = await db
    .select({ guid: roles.guid })
    .from(roles)
    .where(and(eq(roles.userGuid, p.guid), eq(roles.spaceGuid, spaceGuid)))
    .limit(1);
  return row !== undefined;
}
