/**
 * @module /v3/processes: read, edit (command, user, health check), scale and
 * stats. Edits change desired state only; running instances keep their snapshot
 * until a restart. The app-nested forms (/v3/apps/:guid/processes/:type/...)
 * reuse the handlers exported here.
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { linkerOf, reachableProcess, type UserPrincipal } from "../auth/scope";
import { requireUser } from "../auth/principal";
import { listInstancesOfProcess, listInstancesOfProcesses } from "../db/instances";
import { type HealthCheck, listProcesses, type Process, scaleProcess, updateProcess } from "../db/processes";
import type { AppEnv } from "../env";
import { resourceNotFound, unprocessable } from "../errors";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";
import { afterCommit } from "../http/after-commit";
import { presentProcess, presentStats } from "../presenters/processes";
import { checkProcessQuotas } from "../quotas/repo";
import { isDeploying, SCALE_WHILE_DEPLOYING } from "../deployments/repo";
import type { ProcessDemand } from "../quotas/rules";

/** CC's cc.maximum_health_check_timeout (seconds). */
export const MAX_HEALTH_CHECK_TIMEOUT = 180;
/** Berth's cap on instances per process: the scheduler places every one in a single pass. */
export const MAX_INSTANCES = 1000;

const seconds = z.number().int().min(1).nullable().optional();

const healthCheckSchema = z.strictObject({
  type: z.enum(["port", "process", "http"]).optional(),
  data: z.strictObject({
    timeout: z.number().int().min(1).max(MAX_HEALTH_CHECK_TIMEOUT).nullable().optional(),
    invocation_timeout: seconds,
    interval: seconds,
    endpoint: z.string().max(255).regex(/^\/[^\s]*$/, "must be a URI path starting with /").nullable().optional(),
  }).optional(),
});

const processPatchSchema = z.strictObject({
  command: z.string().min(1).max(4096).nullable().optional(),
  user: z.string().min(1).max(255).regex(/^[^\s:]+(:[^\s:]+)?$/, "must be a user name or uid, optionally :group").nullable().optional(),
  health_check: healthCheckSchema.optional(),
});

export const scaleSchema = z.strictObject({
  instances: z.number().int().min(0).max(MAX_INSTANCES).optional(),
  memory_in_mb: z.number().int().min(1).max(1024 * 1024).optional(),
  disk_in_mb: z.number().int().min(1).max(1024 * 1024).optional(),
  log_rate_limit_in_bytes_per_second: z.number().int().min(-1).optional(),
});

/**
 * The health check after a PATCH: unnamed fields keep their value; an endpoint
 * exists only for http checks (CF clears it when the type changes away).
 */
export function applyHealthCheckChange(current: HealthCheck, change: z.output<typeof healthCheckSchema>): HealthCheck | string {
  const type = change.type ?? current.type;
  const data = change.data ?? {};
  if (type !== "http" && data.endpoint != null) return 'Health check type must be "http" to set a health check HTTP endpoint';
  const keep = <T>(v: T | undefined, old: T) => (v === undefined ? old : v);
  return {
    type,
    timeout: keep(data.timeout, current.timeout),
    invocationTimeout: keep(data.invocation_timeout, current.invocationTimeout),
    interval: keep(data.interval, current.interval),
    endpoint: type === "http" ? keep(data.endpoint, current.endpoint) : null,
  };
}

export async function patchProcess(c: Context<AppEnv>, principal: UserPrincipal, proc: Process) {
  const body = await parseJson(c, processPatchSchema);
  let healthCheck: HealthCheck | undefined;
  if (body.health_check) {
    const next = applyHealthCheckChange(proc.healthCheck, body.health_check);
    if (typeof next === "string") throw unprocessable(next);
    healthCheck = next;
  }
  const updated = await updateProcess(c.var.db, proc, { command: body.command, user: body.user, healthCheck }, body, principal);
  if (!updated) throw resourceNotFound("Process");
  afterCommit(c, `update process ${proc.guid}`, { appEvents: [{ type: "audit.app.process.update", appGuid: proc.appGuid, processType: proc.type }] });
  return c.json(presentProcess(updated, linkerOf(c)));
}

export async function scaleProcessAction(c: Context<AppEnv>, principal: UserPrincipal, proc: Process) {
  const body = await parseJson(c, scaleSchema);
  if (proc.type === "web" && (await isDeploying(c.var.db, proc.appGuid))) throw unprocessable(SCALE_WHILE_DEPLOYING);
  const now: ProcessDemand = { instances: proc.instances, memoryInMb: proc.memoryInMb, logRate: proc.logRateLimitInBytesPerSecond };
  const after: ProcessDemand = {
    instances: body.instances ?? now.instances, memoryInMb: body.memory_in_mb ?? now.memoryInMb, logRate: body.log_rate_limit_in_bytes_per_second ?? now.logRate,
  };
  const started = proc.appState === "STARTED";
  await checkProcessQuotas(c.var.db, proc.spaceGuid, [{ before: started ? now : null, after }], started);
  const updated = await scaleProcess(c.var.db, proc, {
    instances: body.instances,
    memoryInMb: body.memory_in_mb,
    diskInMb: body.disk_in_mb,
    logRateLimitInBytesPerSecond: body.log_rate_limit_in_bytes_per_second,
  }, body, principal);
  if (!updated) throw resourceNotFound("Process");
  afterCommit(c, `scale process ${proc.guid}`, { wake: { apps: [proc.appGuid] }, appEvents: [{ type: "audit.app.process.scale", appGuid: proc.appGuid, processType: proc.type }] });
  return c.json(presentProcess(updated, linkerOf(c)), 202);
}

export async function processStats(c: Context<AppEnv>, proc: Process) {
  const rows = await listInstancesOfProcess(c.var.db, proc.guid);
  return c.json(presentStats(proc, rows, Date.now()));
}

const listSchema = z.strictObject({
  app_guids: filterList.optional(),
  types: filterList.optional(),
  space_guids: filterList.optional(),
  guids: filterList.optional(),
  // Berth's addition: each listed process's instance stats, so a client shows a
  // whole space (`berth apps`) in a fixed number of calls instead of one per app.
  include: z.literal("stats", { error: "include must be stats" }).optional(),
  ...pageQuery,
});

/** One page of processes, optionally limited to one app (the nested list); `include=stats` adds `included.stats`. */
export async function listProcessesPage(c: Context<AppEnv>, principal: UserPrincipal, appGuid?: string) {
  const q = parseQuery(c, listSchema);
  const { total, processes } = await listProcesses(c.var.db, {
    appGuids: appGuid ? [appGuid] : q.app_guids,
    types: q.types,
    spaceGuids: q.space_guids,
    guids: q.guids,
    viewer: principal,
    page: q.page,
    perPage: q.per_page,
  });
  const l = linkerOf(c);
  const page = paginated(c.req.url, q, total, processes.map((p) => presentProcess(p, l)));
  if (q.include !== "stats") return c.json(page);
  const rows = await listInstancesOfProcesses(c.var.db, processes.map((p) => p.guid));
  const now = Date.now();
  const stats = processes.map((p) => ({ guid: p.guid, ...presentStats(p, rows.get(p.guid) ?? [], now) }));
  return c.json({ ...page, included: { stats } });
}

export const processes = new Hono<AppEnv>();

processes.get("/", (c) => listProcessesPage(c, requireUser(c)));

processes.get("/:guid", async (c) => {
  const { process } = await reachableProcess(c, c.req.param("guid"));
  return c.json(presentProcess(process, linkerOf(c)));
});

processes.patch("/:guid", async (c) => {
  const { principal, process } = await reachableProcess(c, c.req.param("guid"));
  return patchProcess(c, principal, process);
});

processes.post("/:guid/actions/scale", async (c) => {
  const { principal, process } = await reachableProcess(c, c.req.param("guid"));
  return scaleProcessAction(c, principal, process);
});

// Berth runs no sidecars; the cf CLI lists them while waiting for a push to start.
processes.get("/:guid/sidecars", async (c) => {
  await reachableProcess(c, c.req.param("guid"));
  const q = parseQuery(c, z.strictObject({ ...pageQuery }));
  return c.json(paginated(c.req.url, q, 0, []));
});

processes.get("/:guid/stats", async (c) => {
  const { process } = await reachableProcess(c, c.req.param("guid"));
  return processStats(c, process);
});
