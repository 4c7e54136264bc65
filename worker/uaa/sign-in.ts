/**
 * @module Checking a name and a secret, with UAA's lockout: the password grant
 * (a person's password; `admin`'s is the Worker secret ADMIN_PASSWORD) and the
 * client-credentials grant (a robot user's name and opaque token).
 */
import { isLocked, type LockoutPolicy } from "../auth/lockout";
import { UNMATCHABLE_HASH, verifyPassword } from "../auth/passwords";
import { hashToken } from "../auth/tokens";
import { clearFailures, failuresOf, recordFailure } from "../db/login-failures";
import type { SessionUser } from "../db/sessions";
import { ADMIN_USER, ensureAdminUser, userWithPassword, userWithToken } from "../db/users";
import type { Db } from "../env";
import { accountLocked, badCredentials } from "./errors";

async function sameSecret(a: string, b: string): Promise<boolean> {
  // Compare digests, so the time taken says nothing about the secret.
  const [x, y] = await Promise.all([hashToken(a), hashToken(b)]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x.charCodeAt(i) ^ y.charCodeAt(i);
  return diff === 0;
}

/**
 * Runs `check` for `key` unless the key is locked; a miss counts a failure, a
 * hit clears them. Throws UAA's errors (the cf CLI prints them as they are).
 */
async function throttled(db: Db, key: string, now: number, policy: LockoutPolicy, check: () => Promise<SessionUser | undefined>): Promise<SessionUser> {
  const prior = await failuresOf(db, key);
  if (isLocked(prior, now, policy)) throw accountLocked();
  const user = await check();
  if (!user) {
    await recordFailure(db, key, now, policy);
    throw badCredentials();
  }
  if (prior) await clearFailures(db, key);
  return user;
}

export function checkPassword(
  db: Db,
  adminPassword: string | undefined,
  username: string,
  password: string,
  now: number,
  policy: LockoutPolicy,
): Promise<SessionUser> {
  return throttled(db, `user:${username}`, now, policy, async () => {
    if (username === ADMIN_USER.name) {
      // No ADMIN_PASSWORD set: nobody signs in as admin with a password.
      return adminPassword && (await sameSecret(password, adminPassword)) ? ensureAdminUser(db) : undefined;
    }
    const user = await userWithPassword(db, username);
    // An unknown name costs one hash too, so timing does not tell which names exist.
    const ok = await verifyPassword(password, user?.passwordHash ?? UNMATCHABLE_HASH);
    return ok && user ? user : undefined;
  });
}

export function checkClient(db: Db, clientId: string, secret: string, now: number, policy: LockoutPolicy): Promise<SessionUser> {
  return throttled(db, `client:${clientId}`, now, policy, () => userWithToken(db, clientId, secret));
}
