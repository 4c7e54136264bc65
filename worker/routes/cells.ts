/**
 * @module `/v3/cells`: enrolling cells and routers, the admin's view of cells,
 * draining, and the agent protocol (shared/protocol): desired-set long-poll,
 * heartbeats and instance reports. A cell's credential reaches only its own
 * `/v3/cells/:id/...`; another cell's id answers 403.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env";
import { confirmCellClaim, refuseCellClaim, requireAdmin, requireCell, requireCellClaim, type CellClaim } from "../auth/principal";
import { linkerOf } from "../auth/scope";
import { invalidAuthToken, notAuthorized, resourceNotFound, unprocessable } from "../errors";
import { describeIssues, pageQuery, parseJson, parseQuery } from "../http/validate";
import { paginated } from "../http/pagination";
import { afterCommit } from "../http/after-commit";
import type { Linker } from "../presenters/links";
import { desiredQuerySchema } from "../../shared/protocol/desired-set";
import {
  cellRegistrationSchema, enrollmentTokenRequestSchema, registrationBaseSchema, routerRegistrationSchema,
} from "../../shared/protocol/enrollment";
import { heartbeatSchema, instanceReportsSchema } from "../../shared/protocol/heartbeat";
import { stagingResultSchema } from "../../shared/protocol/staging";
import { RegistryError } from "../../shared/registry/errors";
import { parseReference } from "../../shared/registry/reference";
import { getStagingInput } from "../db/builds";
import { completeStaging, failStaging } from "../staging/stage";
import { lineWriter } from "../logs/app-lines";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";
import {
  createEnrollmentToken, drainCell, enrollmentKind, enrollmentTokenState, enrollmentTokenTtlMs, listEnrollmentTokens, revokeEnrollmentToken, type EnrollmentTokenRecord, forgetCell, getCell, listCells, registerCell, registerRouter, stagingTaskOf,
  type CellRecord,
} from "../scheduling/cells-repo";
import { buildDesiredSet } from "../scheduling/desired-set";
import { holdUntilChanged, watchChannel } from "../scheduling/long-poll";
import { recordHeartbeat, recordInstanceReports } from "../scheduling/reports";
import { versionBumps } from "../scheduling/versions";
import { convergenceConfig } from "../scheduling/config";
import { cellIsAlive } from "../../shared/convergence/cells";
import { stallOf } from "../../shared/convergence/stalls";
import { reportStall } from "../durable/wake";

export const cellsApi = new Hono<AppEnv>();

/** The agent protocol's hot routes: each checks the cell's credential inside its own first D1 batch (auth/principal.ts's CellClaim). */
const CLAIM_ROUTES = /^\/v3\/cells\/([^/]+)\/(?:heartbeat|instances|desired)$/;

/** The cell a request to one of CLAIM_ROUTES names, for the auth middleware; undefined for any other request. */
export function cellClaimFor(method: string, path: string): string | undefined {
  const m = CLAIM_ROUTES.exec(path);
  if (!m) return undefined;
  const methods = path.endsWith("/desired") ? ["GET", "HEAD"] : ["POST"];
  if (!methods.includes(method)) return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return undefined; // not an id any cell has (a stray %): looked up as on any route, and refused there
  }
}

/**
 * A hot route's input. One it refuses (422) is refused so only to the cell itself: anyone else first gets the
 * 401 or 403 a lookup before the route would have given, as on every other route.
 */
async function claimedInput<T>(c: Context<AppEnv>, claim: CellClaim, parse: () => T | Promise<T>): Promise<T> {
  try {
    return await parse();
  } catch (e) {
    await confirmCellClaim(c, claim);
    throw e;
  }
}

function presentCell(cell: CellRecord, l: Linker) {
  return {
    guid: cell.guid,
    name: cell.name,
    zone: cell.zone,
    address: cell.address,
    state: cell.state,
    capacity: cell.capacity,
    free: cell.free,
    instances: cell.instances,
    last_heartbeat_at: cell.lastHeartbeatAt === null ? null : new Date(cell.lastHeartbeatAt).toISOString(),
    desired_version: cell.desiredVersion,
    created_at: cell.createdAt,
    updated_at: cell.updatedAt,
    links: { self: l(`/v3/cells/${cell.guid}`), drain: { ...l(`/v3/cells/${cell.guid}/actions/drain`), method: "POST" } },
  };
}

const presentEnrollmentToken = (t: EnrollmentTokenRecord, now: Date) => ({
  guid: t.guid, kind: t.kind, state: enrollmentTokenState(t, now),
  created_at: t.createdAt, expires_at: t.expiresAt, used_at: t.usedAt, revoked_at: t.revokedAt,
});

cellsApi.post("/enrollment_tokens", async (c) => {
  requireAdmin(c);
  const { kind } = await parseJson(c, enrollmentTokenRequestSchema);
  const now = new Date();
  const created = await createEnrollmentToken(c.var.db, kind, now, enrollmentTokenTtlMs(c.env));
  return c.json({ ...presentEnrollmentToken(created, now), token: created.token }, 201);
});

cellsApi.get("/enrollment_tokens", async (c) => {
  requireAdmin(c);
  const q = parseQuery(c, z.strictObject(pageQuery));
  const { total, tokens } = await listEnrollmentTokens(c.var.db, q.page, q.per_page);
  const now = new Date();
  return c.json(paginated(c.req.url, q, total, tokens.map((t) => presentEnrollmentToken(t, now))));
});

/** Revokes an unused enrollment token at once; a used one answers 422 (delete its cell or router instead). */
cellsApi.delete("/enrollment_tokens/:guid", async (c) => {
  requireAdmin(c);
  const outcome = await revokeEnrollmentToken(c.var.db, c.req.param("guid"), new Date());
  if (outcome === "not_found") throw resourceNotFound("Enrollment token");
  if (outcome === "used") throw unprocessable("This enrollment token was already used: delete the cell or router it enrolled instead.");
  return c.body(null, 204);
});

cellsApi.post("/register", async (c) => {
  // The enrollment token is the credential here: no bearer token needed.
  const body = await parseJson(c, registrationBaseSchema.loose());
  const now = new Date();
  const kind = await enrollmentKind(c.var.db, body.enrollment_token, now);
  if (!kind) throw invalidAuthToken();
  if (kind === "cell") {
    const parsed = cellRegistrationSchema.safeParse(body);
    if (!parsed.success) throw unprocessable(describeIssues(parsed.error));
    const { enrollment_token, protocol: _p, ...cell } = parsed.data;
    const registered = await registerCell(c.var.db, enrollment_token, cell, now);
    if (!registered) throw invalidAuthToken();
    // A new cell may take instances waiting for room, and staging tasks.
    afterCommit(c, "cell registered", { wake: { cells: [registered.guid] } });
    return c.json({ protocol: PROTOCOL_VERSION, kind, ...registered }, 201);
  }
  const parsed = routerRegistrationSchema.safeParse(body);
  if (!parsed.success) throw unprocessable(describeIssues(parsed.error));
  const registered = await registerRouter(c.var.db, parsed.data.enrollment_token, parsed.data.name, now);
  if (!registered) throw invalidAuthToken();
  return c.json({ protocol: PROTOCOL_VERSION, kind, ...registered }, 201);
});

cellsApi.get("/", async (c) => {
  requireAdmin(c);
  const q = parseQuery(c, z.strictObject(pageQuery));
  const { total, cells } = await listCells(c.var.db, q.page, q.per_page);
  const l = linkerOf(c);
  return c.json(paginated(c.req.url, q, total, cells.map((cell) => presentCell(cell, l))));
});

cellsApi.get("/:id", async (c) => {
  requireAdmin(c);
  const cell = await getCell(c.var.db, c.req.param("id"));
  if (!cell) throw resourceNotFound("Cell");
  return c.json(presentCell(cell, linkerOf(c)));
});

cellsApi.post("/:id/actions/drain", async (c) => {
  requireAdmin(c);
  const guid = c.req.param("id");
  if (!(await drainCell(c.var.db, guid, new Date()))) throw resourceNotFound("Cell");
  afterCommit(c, "cell draining", { wake: { cells: [guid] } });
  return c.json(presentCell((await getCell(c.var.db, guid))!, linkerOf(c)), 202);
});

/** Forgets a cell that stopped heartbeating (after drain, agent stop and teardown); a live one is refused. */
cellsApi.delete("/:id", async (c) => {
  requireAdmin(c);
  const cell = await getCell(c.var.db, c.req.param("id"));
  if (!cell) throw resourceNotFound("Cell");
  const view = { last_heartbeat_at: cell.lastHeartbeatAt, registered_at: Date.parse(cell.createdAt) };
  if (cellIsAlive(view, Date.now(), convergenceConfig(c.env))) {
    throw unprocessable(`Cell ${cell.name} (${cell.guid}) is still heartbeating: drain it, stop its agent, then delete it`);
  }
  const { routable } = await forgetCell(c.var.db, cell.guid);
  afterCommit(c, "cell forgotten", { sources: routable ? [{ kind: "routes_table" }] : [], wake: {} });
  return c.body(null, 204);
});

cellsApi.get("/:id/desired", async (c) => {
  const cellGuid = c.req.param("id");
  const claim = requireCellClaim(c, cellGuid);
  const { after, specs } = await claimedInput(c, claim, () => parseQuery(c, desiredQuerySchema));
  // The set carries its version: one batch answers a watcher's GET after a change; only an unchanged one holds.
  let set = (await buildDesiredSet(c.var.db, c.env, claim, specs)) ?? (await refuseCellClaim(c, claim));
  if (after !== undefined && set.version === after) {
    const changed = await holdUntilChanged(c.env, { kind: "cell", cellGuid }, after);
    // A credential revoked during the hold gets a 401, not one more answer: checked here when nothing is read,
    // else by the read itself (the claim is matched in its batch).
    if (!changed) {
      await confirmCellClaim(c, claim);
      return c.body(null, 204);
    }
    set = (await buildDesiredSet(c.var.db, c.env, claim, specs)) ?? (await refuseCellClaim(c, claim));
    // A wake that moved nothing of this cell's (a pass notifies broadly) is still "unchanged".
    if (set.version === after) return c.body(null, 204);
  }
  // A set can move on between the notify and this read: it is still the newest, never stale.
  return c.json(set);
});


/** The desired-set version on a WebSocket (the channel hibernates between changes); the long-poll above is the fallback. */
cellsApi.get("/:id/desired/watch", async (c) => {
  const cellGuid = c.req.param("id");
  requireCell(c, cellGuid);
  return watchChannel(c.env, { kind: "cell", cellGuid }, c.req.raw);
});

cellsApi.post("/:id/heartbeat", async (c) => {
  const received = Date.now();
  const cellGuid = c.req.param("id");
  const claim = requireCellClaim(c, cellGuid);
  const heartbeat = await claimedInput(c, claim, () => parseJson(c, heartbeatSchema));
  const config = convergenceConfig(c.env);
  const outcome = (await recordHeartbeat(c.var.db, claim, heartbeat, received, config.restart)) ?? (await refuseCellClaim(c, claim));
  afterCommit(c, "cell heartbeat", outcome);
  // A heartbeat that waited on D1 tells the scheduler: the wait is the control plane's, not the cell's.
  const stall = stallOf(received, Date.now(), config.stallSlackMs);
  if (stall) c.executionCtx.waitUntil(reportStall(c.env, stall.from, stall.to).catch((err: unknown) => {
    console.error(JSON.stringify({ level: "error", requestId: c.var.requestId, msg: "stall report failed", error: String(err) }));
  }));
  // Reports for instances no longer on this cell are skipped, and named so the agent can log them.
  return c.json({ protocol: PROTOCOL_VERSION, skipped: outcome.rejected, ...(outcome.listInstances ? { list_instances: true } : {}) });
});

cellsApi.post("/:id/instances", async (c) => {
  const claim = requireCellClaim(c, c.req.param("id"));
  const { instances } = await claimedInput(c, claim, () => parseJson(c, instanceReportsSchema));
  const outcome = (await recordInstanceReports(c.var.db, claim, instances, Date.now(), convergenceConfig(c.env).restart)) ?? (await refuseCellClaim(c, claim));
  // Nothing was written: a cell reports only for instances placed on it.
  if (outcome.rejected.length > 0) throw notAuthorized();
  afterCommit(c, "instance state change", outcome);
  return c.json({ protocol: PROTOCOL_VERSION, skipped: [] });
});

cellsApi.post("/:id/staging_results", async (c) => {
  const cellGuid = c.req.param("id");
  requireCell(c, cellGuid);
  const result = await parseJson(c, stagingResultSchema);
  const task = await stagingTaskOf(c.var.db, result.build_guid);
  // Only the cell the task was given to may answer it.
  if (!task || task.stagingLocation !== "cell" || task.stagingCellGuid !== cellGuid) throw notAuthorized();
  const input = await getStagingInput(c.var.db, result.build_guid);
  // Already finished (a repeated result): nothing more to do.
  if (!input || input.state !== "STAGING") return c.json({ build_guid: result.build_guid, state: input?.state ?? task.state });
  const finishing = {
    now: () => new Date(),
    log: (entry: Record<string, unknown>) => console.log(JSON.stringify({ ...entry, requestId: c.var.requestId, cell_guid: cellGuid })),
    stg: lineWriter(c.env, "STG"),
  };
  // The task leaves the cell's set: its version moves in the batch that records the outcome.
  const bumps = versionBumps(c.var.db, { cells: [cellGuid] });
  let outcome;
  if (result.state === "FAILED") {
    outcome = await failStaging(c.var.db, input, result.error, "cell", finishing, bumps.statements);
  } else {
    try {
      outcome = await completeStaging(c.var.db, input, parseReference(input.image), result.image, finishing, bumps.statements);
    } catch (e) {
      if (!(e instanceof RegistryError)) throw e;
      outcome = await failStaging(c.var.db, input, e.message, e.code, finishing, bumps.statements);
    }
  }
  afterCommit(c, "staging result", { sources: bumps.sources });
  const build = await stagingTaskOf(c.var.db, result.build_guid);
  return c.json({ build_guid: result.build_guid, state: build?.state ?? outcome.state });
});
