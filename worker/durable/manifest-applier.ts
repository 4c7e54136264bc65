/**
 * @module The ManifestApplier: one Durable Object per apply_manifest job (named
 * by the job guid) that applies the manifest after the 202, so the job goes
 * PROCESSING → COMPLETE or FAILED as CC's does. An alarm rather than the
 * request's `waitUntil`: `waitUntil` lasts 30 s after the answer and dies with
 * its isolate, which would leave the job PROCESSING for good; an alarm runs
 * again after a crash. `start` records the job and sets the alarm for now; the
 * alarm applies the manifest, ends the job, then tells routers and the
 * scheduler. An unexpected failure (a D1 hiccup) retries after JOB_RETRY_MS
 * until the deadline, then the job FAILs with CC's UnknownError. Applying is
 * find-or-create and set-to-value, and the job ends only once, so a repeated
 * run is harmless.
 */
import { DurableObject } from "cloudflare:workers";
import { connect } from "../db/connect";
import { z } from "zod";
import { finishJob } from "../db/jobs";
import type { Bindings } from "../env";
import { afterCommitSteps } from "../http/after-commit";
import { applyManifest } from "../manifests/apply";
import { parseManifest } from "../manifests/parse";

export const JOB_RETRY_MS = 1_000;
const DEFAULT_JOB_TIMEOUT_MS = 5 * 60 * 1000;

const jobInput = z.object({
  job: z.string(),
  space: z.string(),
  /** The manifest as sent (validated before the 202; parsed again here, purely). */
  manifest: z.string(),
  principal: z.object({ kind: z.literal("user"), guid: z.string(), name: z.string(), admin: z.boolean() }),
});
export type ManifestJobInput = z.infer<typeof jobInput>;

const stored = jobInput.extend({ deadline: z.number() });

const log = (entry: Record<string, unknown>) => console.log(JSON.stringify({ component: "manifest-applier", ...entry }));

export const manifestApplierOf = (env: Pick<Bindings, "MANIFESTS">, job: string) => env.MANIFESTS.get(env.MANIFESTS.idFromName(job));

export function jobTimeoutMs(env: Pick<Bindings, "JOB_TIMEOUT_MS">): number {
  const v = Number(env.JOB_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_JOB_TIMEOUT_MS;
}

export class ManifestApplier extends DurableObject<Bindings> {
  /** Records the job and sets the alarm for now; a repeated start changes nothing. */
  async start(input: ManifestJobInput): Promise<void> {
    if ((await this.ctx.storage.get("job")) !== undefined) return;
    const now = Date.now();
    await this.ctx.storage.put({ ...input, deadline: now + jobTimeoutMs(this.env) });
    await this.ctx.storage.setAlarm(now);
  }

  override async alarm(): Promise<void> {
    const entries = await this.ctx.storage.get(["job", "space", "manifest", "principal", "deadline"]);
    const state = stored.safeParse(Object.fromEntries(entries));
    if (!state.success) return;
    const { job, space, manifest, principal, deadline } = state.data;
    const db = connect(this.env.DB);
    if (Date.now() >= deadline) {
      await finishJob(db, job, [{ code: 10001, title: "CF-UnknownError", detail: "An unknown error occurred." }]);
      await this.ctx.storage.deleteAll();
      return;
    }
    try {
      const outcome = await applyManifest(db, space, parseManifest(manifest), principal, this.env.APPS_DOMAIN);
      await finishJob(db, job, outcome.errors);
      await this.ctx.storage.deleteAll();
      await Promise.all(afterCommitSteps(this.env, `apply manifest to space ${space}`, outcome.committed, { job_guid: job }));
    } catch (err) {
      log({ level: "error", msg: "applying the manifest failed; retrying", job_guid: job, error: err instanceof Error ? err.message : String(err) });
      await this.ctx.storage.setAlarm(Math.min(Date.now() + JOB_RETRY_MS, deadline));
    }
  }
}
