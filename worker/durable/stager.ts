/**
 * @module The Stager: one Durable Object per build (named by the build guid)
 * that resolves the image off the request. `waitUntil` lasts only 30 s, an
 * alarm handler much longer, so `start(buildGuid)` (typed RPC) records the build and its
 * deadline and sets the alarm for now; the alarm stages the build with the
 * remaining time as its budget. An unexpected failure (a D1 hiccup) retries
 * a second later until the deadline, then fails the build; the build's own
 * conditional writes make a repeated run harmless. A build handed to a cell
 * leaves its Stager: the agent protocol's staging task owns it from then on.
 */
import { DurableObject } from "cloudflare:workers";
import { connect } from "../db/connect";
import { z } from "zod";
import { getStagingInput } from "../db/builds";
import { lineWriter } from "../logs/app-lines";
import type { Bindings } from "../env";
import { failStaging, stageBuild } from "../staging/stage";
import { stagingBudgetMs, STAGING_RETRY_MS, requestTimeoutFor } from "../staging/budget";

const stored = z.object({ build: z.string(), deadline: z.number(), budget: z.number() });

const log = (entry: Record<string, unknown>) => console.log(JSON.stringify({ component: "stager", ...entry }));

export class Stager extends DurableObject<Bindings> {
  /** Records the build and its deadline and sets the alarm for now; a repeated start keeps the first deadline. */
  async start(buildGuid: string): Promise<void> {
    if ((await this.ctx.storage.get("build")) !== undefined) return;
    const budget = stagingBudgetMs(this.env);
    const now = Date.now();
    await this.ctx.storage.put({ build: buildGuid, deadline: now + budget, budget });
    await this.ctx.storage.setAlarm(now);
  }

  override async alarm(): Promise<void> {
    const state = stored.safeParse({
      build: await this.ctx.storage.get("build"),
      deadline: await this.ctx.storage.get("deadline"),
      budget: await this.ctx.storage.get("budget"),
    });
    if (!state.success) return;
    const { build, deadline, budget } = state.data;
    const db = connect(this.env.DB);
    const remaining = deadline - Date.now();
    const finishing = { now: () => new Date(), log, stg: lineWriter(this.env, "STG") };
    if (remaining <= 0) {
      const input = await getStagingInput(db, build);
      if (input?.state === "STAGING") await failStaging(db, input, `staging did not finish within ${budget} ms`, "timeout", finishing);
      await this.ctx.storage.deleteAll();
      return;
    }
    try {
      const outcome = await stageBuild(build, {
        db,
        fetch: (input, init) => fetch(input, init),
        encryptionKey: this.env.ENCRYPTION_KEY,
        signal: AbortSignal.timeout(remaining),
        requestTimeoutMs: requestTimeoutFor(remaining),
        ...finishing,
      });
      log({ level: "info", msg: "staging run finished", build_guid: build, outcome: outcome.state });
      await this.ctx.storage.deleteAll();
    } catch (err) {
      // Never the password: stageBuild's errors carry none, and only the message is logged.
      log({ level: "error", msg: "staging run failed; retrying", build_guid: build, error: err instanceof Error ? err.message : String(err) });
      await this.ctx.storage.setAlarm(Math.min(Date.now() + STAGING_RETRY_MS, deadline));
    }
  }
}
