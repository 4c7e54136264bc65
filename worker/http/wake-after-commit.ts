/**
 * @module Telling others after a change is already committed: waking the
 * scheduler, or only the long-polls whose version moved. A failure must not
 * turn a stored change into a 500: it is logged, and the scheduler's alarm
 * (or the cron backstop) still runs the pass; a poll that missed the notify
 * sees the new version when its hold ends.
 */
import type { Context } from "hono";
import { wakeScheduler } from "../durable/wake";
import type { AppEnv } from "../env";
import { notifyChannels } from "../scheduling/long-poll";
import type { VersionSource } from "../scheduling/versions";

async function afterCommit(c: Context<AppEnv>, what: string, reason: string, act: () => Promise<void>): Promise<void> {
  try {
    await act();
  } catch (err) {
    console.error(JSON.stringify({ level: "error", requestId: c.var.requestId, msg: `${what} failed`, reason, error: String(err) }));
  }
}

export const wakeAfterCommit = (c: Context<AppEnv>, reason: string): Promise<void> =>
  afterCommit(c, "scheduler wake", reason, () => wakeScheduler(c.env, reason));

/** For changes that move long-poll versions but no desired state (routes): no scheduler pass needed. */
export const notifyAfterCommit = (c: Context<AppEnv>, sources: VersionSource[], reason: string): Promise<void> =>
  afterCommit(c, "long-poll notify", reason, () => notifyChannels(c.env, sources));
