/**
 * @module Who is calling. Resolved once per request by the auth middleware and
 * read through `c.var.principal`; the guards below turn a wrong role into CF errors.
 */
import { and, eq, inArray, isNull, or } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv, Bindings, Db } from "../env";
import { cells, roles, routers, spaces, users } from "../db/schema";
import { sessionUser } from "../db/sessions";
import { invalidAuthToken, notAuthenticated, notAuthorized } from "../errors";
import { readToken } from "../uaa/tokens";
import { looksLikeJwt, signingKeys } from "./jwt";
import { endpointAction, orgActions, spaceActions, type RoleType } from "./permissions";
import { hashToken, tokenKindOf } from "./tokens";

export type Principal =
  | { kind: "user"; guid: string; name: string; admin: boolean }
  | { kind: "cell"; guid: string; name: string }
  | { kind: "router"; guid: string; name: string }
  | CellClaim
  | { kind: "anonymous" };

/**
 * A cell's token on one of the agent protocol's hot routes (heartbeat, reports,
 * desired set), not yet looked up: the route checks it inside its own first D1
 * batch (`WHERE guid = ? AND token_hash = ?`), one round trip fewer on every
 * request a cell makes. Only those routes are given one (`claimFor`); until the
 * batch found the row it is worth nothing.
 */
export interface CellClaim {
  readonly kind: "cell-claim";
  readonly guid: string;
  readonly tokenHash: string;
}

/** The bootstrap admin (Worker secret ADMIN_TOKEN) has no row; this is its identity. */
export const BOOTSTRAP_ADMIN = { kind: "user", guid: "admin", name: "admin", admin: true } as const;

function timingSafeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * A signed access token's user: signature, expiry, and a live session (or, for
 * a client-credentials token, which has none, the user still existing). The cf
 * CLI answers the 401 by refreshing.
 */
async function accessTokenPrincipal(db: Db, env: Bindings, token: string, now: number): Promise<Principal> {
  if (!env.TOKEN_SIGNING_KEY) throw invalidAuthToken();
  const t = await readToken(await signingKeys(env), token);
  if (!t || t.use !== "access" || t.exp * 1000 <= now) throw invalidAuthToken();
  const user = t.sid !== undefined
    ? await sessionUser(db, t.sid, t.sub, now)
    : (await db.select({ guid: users.guid, name: users.name, admin: users.admin }).from(users).where(eq(users.guid, t.sub)).limit(1))[0];
  if (!user) throw invalidAuthToken();
  return { kind: "user", guid: user.guid, name: user.name, admin: user.admin };
}

/**
 * Maps an Authorization header to a principal; throws 401 for a malformed, unknown, expired or revoked token.
 * `claimFor`: the cell a hot cell route names, whose cell token is left for the route to check (CellClaim).
 */
export async function resolvePrincipal(db: Db, header: string | undefined, env: Bindings, now: number = Date.now(), claimFor?: string): Promise<Principal> {
  if (!header) return { kind: "anonymous" };
  const m = /^bearer\s+([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim());
  if (!m) throw invalidAuthToken();
  if (looksLikeJwt(m[1]!)) return accessTokenPrincipal(db, env, m[1]!, now);
  const adminToken = env.ADMIN_TOKEN;
  const hash = await hashToken(m[1]!);
  if (adminToken && timingSafeEqualHex(hash, await adminTokenHash(adminToken))) return BOOTSTRAP_ADMIN;
  // A token's prefix names its kind (auth/tokens.ts): a cell's or router's is looked up in its own table only
  // (a cell's on its hot routes by the route's own batch, CellClaim). The kind only picks the table: the hash must still match a row there.
  const kind = tokenKindOf(m[1]!);
  if (kind === "cell" && claimFor !== undefined) return { kind: "cell-claim", guid: claimFor, tokenHash: hash };
  if (kind !== "cell" && kind !== "router") {
    const [user] = await db.select({ guid: users.guid, name: users.name, admin: users.admin }).from(users).where(eq(users.tokenHash, hash)).limit(1);
    if (user) return { kind: "user", guid: user.guid, name: user.name, admin: user.admin };
  }
  if (kind !== "user" && kind !== "router") {
    const [cell] = await db.select({ guid: cells.guid, name: cells.name }).from(cells).where(eq(cells.tokenHash, hash)).limit(1);
    if (cell) return { kind: "cell", guid: cell.guid, name: cell.name };
  }
  if (kind !== "user" && kind !== "cell") {
    const [router] = await db.select({ guid: routers.guid, name: routers.name }).from(routers).where(eq(routers.tokenHash, hash)).limit(1);
    if (router) return { kind: "router", guid: router.guid, name: router.name };
  }
  throw invalidAuthToken();
}

/** The bootstrap admin token's hash, computed once per isolate (every request compares against it). */
let adminHash: { token: string; hash: Promise<string> } | undefined;
function adminTokenHash(token: string): Promise<string> {
  if (adminHash?.token !== token) adminHash = { token, hash: hashToken(token) };
  return adminHash.hash;
}

/**
 * Checks a held request's credential again before it answers: a token, cell or
 * router revoked while its long-poll was held gets a 401, not one more answer.
 */
export async function stillAuthenticated(c: Context<AppEnv>): Promise<void> {
  await resolvePrincipal(c.var.db, c.req.header("Authorization"), c.env);
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

/** The claim of a hot cell route (CellClaim) naming `cellGuid`; anything else is refused as requireCell would. */
export function requireCellClaim(c: Context<AppEnv>, cellGuid: string): CellClaim {
  const p = requireAuthenticated(c);
  if (p.kind !== "cell-claim" || p.guid !== cellGuid) throw notAuthorized();
  return p;
}

/**
 * Looks the claim's token up as the middleware does for other routes: 401 for a token no cell holds, 403 for
 * another cell's; returns when it is the named cell's own.
 */
export async function confirmCellClaim(c: Context<AppEnv>, claim: CellClaim): Promise<void> {
  const p = await resolvePrincipal(c.var.db, c.req.header("Authorization"), c.env);
  if (p.kind !== "cell" || p.guid !== claim.guid) throw notAuthorized();
}

/** What a claim its batch matched no row for gets, as if it had been looked up first (confirmCellClaim). */
export async function refuseCellClaim(c: Context<AppEnv>, claim: CellClaim): Promise<never> {
  await confirmCellClaim(c, claim);
  throw notAuthorized();
}

export function requireRouter(c: Context<AppEnv>): Principal {
  const p = requireAuthenticated(c);
  if (p.kind === "router" || (p.kind === "user" && p.admin)) return p;
  throw notAuthorized();
}

/** The user's roles that bear on a space: the space's own and its organization's. */
async function rolesInSpace(db: Db, userGuid: string, spaceGuid: string): Promise<RoleType[]> {
  const orgOfSpace = db.select({ guid: spaces.organizationGuid }).from(spaces).where(eq(spaces.guid, spaceGuid));
  const rows = await db
    .select({ type: roles.type })
    .from(roles)
    .where(and(eq(roles.userGuid, userGuid), or(eq(roles.spaceGuid, spaceGuid), and(isNull(roles.spaceGuid), inArray(roles.organizationGuid, orgOfSpace)))));
  return rows.map((r) => r.type);
}

/**
 * Whether the calling user may see the space; if they may see it but not do
 * what this endpoint does (auth/permissions.ts), 403. Callers answer false with
 * 404 (or 422 for a relationship), as CC does for what you cannot see.
 */
export async function canAccessSpace(c: Context<AppEnv>, spaceGuid: string): Promise<boolean> {
  const p = requireUser(c);
  const actions = spaceActions(p.admin, p.admin ? [] : await rolesInSpace(c.var.db, p.guid, spaceGuid));
  if (!actions.has("read")) return false;
  if (!actions.has(endpointAction(c.req.method, c.req.routePath))) throw notAuthorized();
  return true;
}

/** What the user may do in a space (for endpoints that decide more than one thing). */
export async function actionsInSpace(db: Db, p: UserPrincipal, spaceGuid: string) {
  return spaceActions(p.admin, p.admin ? [] : await rolesInSpace(db, p.guid, spaceGuid));
}

/** What the user may do in an organization. */
export async function actionsInOrg(db: Db, p: UserPrincipal, orgGuid: string) {
  if (p.admin) return orgActions(true, []);
  const rows = await db.select({ type: roles.type }).from(roles).where(and(eq(roles.userGuid, p.guid), eq(roles.organizationGuid, orgGuid)));
  return orgActions(false, rows.map((r) => r.type));
}
