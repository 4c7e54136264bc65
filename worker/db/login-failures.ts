/** @module Failed sign-ins per user name (auth/lockout.ts decides what they mean). */
import { eq, sql } from "drizzle-orm";
import type { FailureRecord, LockoutPolicy } from "../auth/lockout";
import type { Db } from "../env";
import { loginFailures } from "./schema";

export async function failuresOf(db: Db, username: string): Promise<FailureRecord | undefined> {
  const [row] = await db.select({ failures: loginFailures.failures, windowStart: loginFailures.windowStart })
    .from(loginFailures).where(eq(loginFailures.username, username)).limit(1);
  return row;
}

/** Counts one failure in one statement (parallel attempts all count): a closed window starts again at 1. */
export async function recordFailure(db: Db, username: string, now: number, p: LockoutPolicy): Promise<void> {
  const expired = sql`${now} >= ${loginFailures.windowStart} + ${p.windowMs}`;
  await db.insert(loginFailures).values({ username, failures: 1, windowStart: now }).onConflictDoUpdate({
    target: loginFailures.username,
    set: {
      failures: sql`CASE WHEN ${expired} THEN 1 ELSE ${loginFailures.failures} + 1 END`,
      windowStart: sql`CASE WHEN ${expired} THEN ${now} ELSE ${loginFailures.windowStart} END`,
    },
  });
}

export async function clearFailures(db: Db, username: string): Promise<void> {
  await db.delete(loginFailures).where(eq(loginFailures.username, username));
}
