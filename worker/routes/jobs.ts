/**
 * @module `/v3/jobs/:guid`: how a 202's work went, for its requester (and admins).
 * `acceptedWithJob` is how a route answers 202 with CC's `Location: /v3/jobs/...`.
 */
import { Hono, type Context } from "hono";
import { requireUser } from "../auth/principal";
import { finishedJob, getJob, type Job } from "../db/jobs";
import type { AppEnv } from "../env";
import { resourceNotFound } from "../errors";
import { link } from "../http/links";

export const jobsApi = new Hono<AppEnv>();

const presentJob = (c: Context, j: Job) => ({
  guid: j.guid,
  created_at: j.createdAt,
  updated_at: j.updatedAt,
  operation: j.operation,
  state: j.state,
  errors: j.errors,
  warnings: [],
  links: { self: link(c, `/v3/jobs/${j.guid}`) },
});

/** 202 with the job of work already done (CC's shape for deletes). */
export async function acceptedWithJob(c: Context<AppEnv>, operation: string, requester: { guid: string }) {
  return accepted(c, await finishedJob(c.var.db, operation, requester.guid));
}

/** 202 pointing at `job` (`Location: /v3/jobs/:guid`), for the requester to follow. */
export function accepted(c: Context<AppEnv>, job: Job) {
  c.header("Location", link(c, `/v3/jobs/${job.guid}`).href);
  return c.body(null, 202);
}

jobsApi.get("/:guid", async (c) => {
  const viewer = requireUser(c);
  const job = await getJob(c.var.db, c.req.param("guid"), viewer);
  if (!job) throw resourceNotFound("Job");
  return c.json(presentJob(c, job));
});
