/**
 * @module What a request does after its write committed: tell the channels of
 * the version sources the write named (the one notifier), wake the
 * scheduler with the scope it touched, and write the API lines the change
 * puts in its app's logs (logs/api-lines.ts). All run after the response
 * (`waitUntil`): a request never waits for them, let alone for a pass. A
 * failure is logged, never a 500 for a stored change: the scheduler's periodic
 * full pass still converges it, and a poll that missed the notify sees the new
 * version when its hold ends.
 */
import type { Context } from "hono";
import { wakeScheduler } from "../durable/wake";
import type { AppEnv, Bindings } from "../env";
import { notifyChannels } from "../scheduling/long-poll";
import type { MovedSource } from "../scheduling/versions";
import type { WakeScope } from "../scheduling/wake-scope";
import { apiLines, type ApiLineEvent } from "../logs/api-lines";
import { appendAppLines, platformLine } from "../logs/app-lines";

export interface Committed {
  /** Sources whose versions the write moved (with the versions, where it read them back). */
  sources?: MovedSource[];
  /** Desired state the write changed, for the scheduler; absent when it changed none. */
  wake?: WakeScope;
  /** Changes to apps the write recorded, told in their logs as CC's API lines. */
  appEvents?: ApiLineEvent[];
}

export function afterCommit(c: Context<AppEnv>, reason: string, committed: Committed): void {
  for (const step of afterCommitSteps(c.env, reason, committed, { requestId: c.var.requestId })) c.executionCtx.waitUntil(step);
}

/** The same steps for work done outside a request (a job's Durable Object), each already guarded; the caller waits for them or hands them to waitUntil. */
export function afterCommitSteps(env: Bindings, reason: string, committed: Committed, logFields: Record<string, unknown> = {}): Promise<void>[] {
  const attempt = (what: string, act: () => Promise<void>) =>
    act().catch((err: unknown) => {
      console.error(JSON.stringify({ level: "error", ...logFields, msg: `${what} failed`, reason, error: String(err) }));
    });
  const { sources = [], wake, appEvents = [] } = committed;
  const steps: Promise<void>[] = [];
  if (sources.length > 0) steps.push(attempt("long-poll notify", () => notifyChannels(env, sources)));
  if (wake) steps.push(attempt("scheduler wake", () => wakeScheduler(env, reason, wake)));
  if (appEvents.length > 0) {
    const now = Date.now();
    const lines = appEvents.map((e) => ({ appGuid: e.appGuid, lines: apiLines(e).map((text) => platformLine("API", text, now)) }));
    steps.push(attempt("app log write", () => appendAppLines(env, lines, now)));
  }
  return steps;
}
