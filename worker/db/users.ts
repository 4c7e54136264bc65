/**
 * @module People and robots. A robot's bearer token is shown once, at creation,
 * and only its SHA-256 is stored (auth/tokens.ts); a person's password only as
 * a PBKDF2 hash (auth/passwords.ts).
 */
import { and, asc, desc, eq, inArray, or } from "drizzle-orm";
import { hashPassword } from "../auth/passwords";
import { hashToken, newToken } from "../auth/tokens";
import type { Db } from "../env";
import { isoNow, newGuid } from "../http/ids";
import { type AuditEventInput, writeAudited } from "./audit";
import { type Page, selectPage } from "./paging";
import { paramChunks } from "./param-chunks";
import { memberOrganizationGuids, type Viewer } from "./roles";
import { roles, users } from "./schema";

export interface User {
  guid: string;
  name: string;
  admin: boolean;
  createdAt: string;
  updatedAt: string;
}

const columns = { guid: users.guid, name: users.name, admin: users.admin, createdAt: users.createdAt, updatedAt: users.updatedAt };

/** Creates a user and its token; null when the name is taken. */
export async function createUser(
  db: Db,
  input: { name: string; admin: boolean },
  actor: AuditEventInput["actor"],
  now: Date = new Date(),
): Promise<{ user: User; token: string } | null> {
  const token = newToken("user");
  const at = isoNow(now);
  const user: User = { guid: newGuid(), name: input.name, admin: input.admin, createdAt: at, updatedAt: at };
  // DO NOTHING on a taken name: the event is then dropped too.
  const created = await writeAudited(db, db.insert(users).values({ ...user, tokenHash: await hashToken(token) }).onConflictDoNothing(), {
    type: "audit.user.create",
    actor,
    target: { guid: user.guid, type: "user", name: user.name },
    data: { request: { name: user.name, admin: user.admin } },
    now,
  });
  return created ? { user, token } : null;
}

/** The user signing in with a password is `admin` (Worker secret ADMIN_PASSWORD) with this guid, the bootstrap token's identity. */
export const ADMIN_USER = { guid: "admin", name: "admin" } as const;

/** Creates a user who signs in with a password (UAA's SCIM create); null when the name is taken. */
export async function createPasswordUser(
  db: Db,
  input: { name: string; password: string },
  actor: AuditEventInput["actor"],
  now: Date = new Date(),
): Promise<User | null> {
  const at = isoNow(now);
  const user: User = { guid: newGuid(), name: input.name, admin: false, createdAt: at, updatedAt: at };
  const created = await writeAudited(db, db.insert(users).values({ ...user, passwordHash: await hashPassword(input.password) }).onConflictDoNothing(), {
    type: "audit.user.create",
    actor,
    target: { guid: user.guid, type: "user", name: user.name },
    data: { request: { name: user.name, origin: "uaa" } },
    now,
  });
  return created ? user : null;
}

/** The `admin` row, made at its first sign-in so roles can name it; undefined if another, non-admin user took the name. */
export async function ensureAdminUser(db: Db): Promise<User | undefined> {
  await db.insert(users).values({ ...ADMIN_USER, admin: true }).onConflictDoNothing();
  const [row] = await db.select(columns).from(users).where(and(eq(users.name, ADMIN_USER.name), eq(users.admin, true))).limit(1);
  return row;
}

/** The user and their password hash, by name, for a sign-in. */
export async function userWithPassword(db: Db, name: string): Promise<(User & { passwordHash: string | null }) | undefined> {
  const [row] = await db.select({ ...columns, passwordHash: users.passwordHash }).from(users).where(eq(users.name, name)).limit(1);
  return row;
}

/** A robot's user by name and opaque token (the client-credentials grant). */
export async function userWithToken(db: Db, name: string, token: string): Promise<User | undefined> {
  const [row] = await db.select(columns).from(users).where(and(eq(users.name, name), eq(users.tokenHash, await hashToken(token)))).limit(1);
  return row;
}

export async function setPassword(db: Db, guid: string, password: string, now: Date = new Date()): Promise<boolean> {
  const res = await db.update(users).set({ passwordHash: await hashPassword(password), updatedAt: isoNow(now) }).where(eq(users.guid, guid));
  return res.meta.changes === 1;
}

/** Deletes a user; their roles and sessions go with them (ON DELETE CASCADE). */
export async function deleteUser(db: Db, guid: string): Promise<boolean> {
  const res = await db.delete(users).where(eq(users.guid, guid));
  // changes() counts the cascaded rows too.
  return res.meta.changes > 0;
}

export async function getUserByName(db: Db, name: string): Promise<User | undefined> {
  const [row] = await db.select(columns).from(users).where(eq(users.name, name)).limit(1);
  return row;
}

/** Users by guid (at most one page of roles' worth, under D1's parameter cap). */
export async function usersByGuid(db: Db, guids: string[]): Promise<User[]> {
  const out: User[] = [];
  for (const chunk of paramChunks(guids)) out.push(...(await db.select(columns).from(users).where(inArray(users.guid, chunk))));
  return out;
}

export async function getUser(db: Db, guid: string): Promise<User | undefined> {
  const [row] = await db.select(columns).from(users).where(eq(users.guid, guid)).limit(1);
  return row;
}

export interface UserListQuery extends Page {
  names?: string[];
  /** Non-admins see themselves and the users who share an organization with them (CC). */
  viewer?: Viewer;
  orderBy: "created_at" | "-created_at" | "username" | "-username";
}

export async function listUsers(db: Db, q: UserListQuery): Promise<{ total: number; users: User[] }> {
  const shared = q.viewer && !q.viewer.admin
    ? or(eq(users.guid, q.viewer.guid), inArray(users.guid, db.select({ g: roles.userGuid }).from(roles).where(inArray(roles.organizationGuid, memberOrganizationGuids(db, q.viewer.guid)))))
    : undefined;
  const cond = and(q.names ? inArray(users.name, q.names) : undefined, shared);
  const col = q.orderBy.endsWith("username") ? users.name : users.createdAt;
  const dir = q.orderBy.startsWith("-") ? desc : asc;
  const { total, rows } = await selectPage(db, users, cond, [dir(col), dir(users.guid)], q);
  return { total, users: rows.map(({ tokenHash: _t, passwordHash: _p, ...user }) => user) };
}
