/**
 * @module Waking the scheduler after a change is already committed. A failed
 * wake must not turn a stored change into a 500: it is logged, and the
 * scheduler's alarm (or the cron backstop) still runs the pass.
 */
import type { Context } from "hono";
import { wakeScheduler } from "../durable/wake";
import type { AppEnv } from "../env";

export async function wakeAfterCommit(c: Context<AppEnv>, reason: string): Promise<void> {
  try {
    await wakeScheduler(c.env, reason);
  } catch (err) {
    console.error(JSON.stringify({ level: "error", requestId: c.var.requestId, msg: "scheduler wake failed", reason, error: String(err) }));
  }
}
