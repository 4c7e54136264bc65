/**
 * @module Sign-in sessions: a row lives as long as its refresh token; access
 * tokens name it (`sid`), so deleting it revokes them all at once.
 */
import { and, eq, gt, lte } from "drizzle-orm";
import type { Db } from "../env";
import { isoNow } from "../http/ids";
import { sessions, users } from "./schema";

export interface SessionUser {
  guid: string;
  name: string;
  admin: boolean;
}

/** Opens a session, and drops the user's expired ones so the table does not grow with every sign-in. */
export async function createSession(db: Db, s: { guid: string; userGuid: string; clientId: string; expiresAt: number }, now: Date): Promise<void> {
  await db.batch([
    db.delete(sessions).where(and(eq(sessions.userGuid, s.userGuid), lte(sessions.expiresAt, now.getTime()))),
    db.insert(sessions).values({ ...s, createdAt: isoNow(now) }),
  ]);
}

/** The user of a live session, if the session exists, is theirs and has not expired. */
export async function sessionUser(db: Db, sid: string, userGuid: string, now: number): Promise<SessionUser | undefined> {
  const [row] = await db
    .select({ guid: users.guid, name: users.name, admin: users.admin })
    .from(sessions)
    .innerJoin(users, eq(users.guid, sessions.userGuid))
    .where(and(eq(sessions.guid, sid), eq(sessions.userGuid, userGuid), gt(sessions.expiresAt, now)))
    .limit(1);
  return row;
}

/** Ends a session; only its owner's (or, with no owner given, anyone's for admins). */
export async function deleteSession(db: Db, sid: string, ownerGuid?: string): Promise<void> {
  await db.delete(sessions).where(ownerGuid === undefined ? eq(sessions.guid, sid) : and(eq(sessions.guid, sid), eq(sessions.userGuid, ownerGuid)));
}

/** Signs a user out everywhere (a new password, as UAA does). */
export async function deleteUserSessions(db: Db, userGuid: string): Promise<void> {
  await db.delete(sessions).where(eq(sessions.userGuid, userGuid));
}
