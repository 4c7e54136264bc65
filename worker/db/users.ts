/**
 * @module People who hold bearer tokens. A token is shown once, at creation;
 * only its SHA-256 is stored (auth/tokens.ts).
 */
import { asc, desc, eq, inArray } from "drizzle-orm";
import { hashToken, newToken } from "../auth/tokens";
import type { Db } from "../env";
import { isoNow, newGuid } from "../http/ids";
import { type AuditEventInput, writeAudited } from "./audit";
import { type Page, selectPage } from "./paging";
import { users } from "./schema";

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

export async function getUser(db: Db, guid: string): Promise<User | undefined> {
  const [row] = await db.select(columns).from(users).where(eq(users.guid, guid)).limit(1);
  return row;
}

export interface UserListQuery extends Page {
  names?: string[];
  orderBy: "created_at" | "-created_at" | "username" | "-username";
}

export async function listUsers(db: Db, q: UserListQuery): Promise<{ total: number; users: User[] }> {
  const cond = q.names ? inArray(users.name, q.names) : undefined;
  const col = q.orderBy.endsWith("username") ? users.name : users.createdAt;
  const dir = q.orderBy.startsWith("-") ? desc : asc;
  const { total, rows } = await selectPage(db, users, cond, [dir(col), dir(users.guid)], q);
  return { total, users: rows.map(({ tokenHash: _t, passwordHash: _p, ...user }) => user) };
}
