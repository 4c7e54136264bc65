/** @module CC's jobs: the record of work for a 202 answer, done already or running after it (schema.ts § jobs). */
import { and, eq } from "drizzle-orm";
import type { Db } from "../env";
import { isoNow, newGuid } from "../http/ids";
import type { Viewer } from "./roles";
import { jobs } from "./schema";

export type Job = typeof jobs.$inferSelect;

/** Records finished work; `errors` empty means COMPLETE. */
export async function finishedJob(db: Db, operation: string, userGuid: string, errors: Job["errors"] = [], now: Date = new Date()): Promise<Job> {
  const at = isoNow(now);
  const job: Job = { guid: newGuid(), operation, state: errors.length ? "FAILED" : "COMPLETE", errors, userGuid, createdAt: at, updatedAt: at };
  await db.insert(jobs).values(job);
  return job;
}

export async function getJob(db: Db, guid: string, viewer: Viewer): Promise<Job | undefined> {
  const [row] = await db.select().from(jobs).where(and(eq(jobs.guid, guid), viewer.admin ? undefined : eq(jobs.userGuid, viewer.guid))).limit(1);
  return row;
}

/** Records work about to run after the answer (state PROCESSING). */
export async function processingJob(db: Db, operation: string, userGuid: string, now: Date = new Date()): Promise<Job> {
  const at = isoNow(now);
  const job: Job = { guid: newGuid(), operation, state: "PROCESSING", errors: [], userGuid, createdAt: at, updatedAt: at };
  await db.insert(jobs).values(job);
  return job;
}

/** Ends a PROCESSING job: COMPLETE, or FAILED with `errors`; false when it had already ended (a repeated run changes nothing). */
export async function finishJob(db: Db, guid: string, errors: Job["errors"], now: Date = new Date()): Promise<boolean> {
  const result = await db.update(jobs).set({ state: errors.length ? "FAILED" : "COMPLETE", errors, updatedAt: isoNow(now) })
    .where(and(eq(jobs.guid, guid), eq(jobs.state, "PROCESSING")));
  return result.meta.changes === 1;
}
