/**
 * @module `/v3/deployments`: rolling deployments in CC's shapes and words.
 * POST creates one (the app's current droplet, or the one named), GET reads and
 * lists (the cf CLI lists an app's ACTIVE ones after a push and for
 * cancel-deployment), `actions/cancel` rolls back, `actions/continue` answers
 * as CC does for a deployment that is not a paused canary. The rolling itself
 * is the scheduler's (worker/deployments/).
 */
import { Hono } from "hono";
import { z } from "zod";
import { actionsInSpace, canAccessSpace, requireUser } from "../auth/principal";
import { linkerOf } from "../auth/scope";
import { getApp } from "../db/apps";
import { requireFeatureEnabled } from "../db/feature-flags";
import { cancelDeployment, createDeployment, type Deployment, getDeployment, listDeployments } from "../deployments/repo";
import type { AppEnv } from "../env";
import { resourceNotFound, unprocessable } from "../errors";
import { afterCommit } from "../http/after-commit";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";
import { presentDeployment } from "../presenters/deployments";
import type { Context } from "hono";

const guidRef = z.strictObject({ guid: z.string().min(1).max(255) });

const createSchema = z.strictObject({
  relationships: z.strictObject({ app: z.strictObject({ data: guidRef }) }),
  droplet: guidRef.optional(),
  revision: guidRef.optional(),
  strategy: z.string().nullable().optional(),
  options: z.record(z.string(), z.unknown()).optional(),
  metadata: z.strictObject({ labels: z.record(z.string(), z.never()).optional(), annotations: z.record(z.string(), z.never()).optional() }).optional(),
});

const listSchema = z.strictObject({
  app_guids: filterList.optional(),
  states: filterList.optional(),
  status_values: filterList.optional(),
  status_reasons: filterList.optional(),
  guids: filterList.optional(),
  order_by: z.enum(["created_at", "-created_at", "updated_at", "-updated_at"]).default("created_at"),
  ...pageQuery,
});

const UNABLE_TO_USE = "Unable to use app. Ensure that the app exists and you have access to it.";

/** CC's DeploymentCreateMessage checks, in its words; Berth rolls, so canary is refused as unsupported here. */
function createProblems(body: z.output<typeof createSchema>): { problems: string[]; maxInFlight: number } {
  const problems: string[] = [];
  const strategy = body.strategy ?? "rolling";
  if (strategy !== "rolling") problems.push(`Strategy '${strategy}' is not a supported deployment strategy`);
  if (body.droplet && body.revision) problems.push("Droplet Cannot set both fields 'droplet' and 'revision'");
  const options = body.options ?? {};
  const unsupported = Object.keys(options).filter((k) => k !== "max_in_flight");
  if (unsupported.length > 0) problems.push(`Options has unsupported key(s): ${unsupported.join(", ")}`);
  const max = options.max_in_flight ?? 1;
  if (typeof max !== "number" || !Number.isInteger(max) || max < 1) problems.push("Max in flight must be an integer greater than 0");
  return { problems, maxInFlight: typeof max === "number" ? max : 1 };
}

/** The deployment, if the caller may see its app; else 404 "Deployment not found". */
async function reachableDeployment(c: Context<AppEnv>): Promise<{ deployment: Deployment; app: NonNullable<Awaited<ReturnType<typeof getApp>>> }> {
  requireUser(c);
  const deployment = await getDeployment(c.var.db, c.req.param("guid") ?? "");
  const app = deployment && (await getApp(c.var.db, deployment.appGuid));
  if (!deployment || !app || !(await canAccessSpace(c, app.spaceGuid))) throw resourceNotFound("Deployment");
  return { deployment, app };
}

export const deploymentsApi = new Hono<AppEnv>();

deploymentsApi.post("/", async (c) => {
  const principal = requireUser(c);
  const body = await parseJson(c, createSchema);
  const { problems, maxInFlight } = createProblems(body);
  if (problems.length > 0) throw unprocessable(problems.join(", "));
  const app = await getApp(c.var.db, body.relationships.app.data.guid);
  // CC answers 422 whether the app is missing, unseen or only readable.
  if (!app || !(await actionsInSpace(c.var.db, principal, app.spaceGuid)).has("develop")) throw unprocessable(UNABLE_TO_USE);
  if (body.revision) throw unprocessable("Cannot create deployment from a revision for an app without revisions enabled");
  await requireFeatureEnabled(c.var.db, "diego_docker");
  const created = await createDeployment(c.var.db, { app, dropletGuid: body.droplet?.guid, maxInFlight, request: body }, principal);
  if (typeof created === "string") throw unprocessable(created);
  afterCommit(c, `deployment ${created.guid} of app ${app.guid}`, {
    wake: { apps: [app.guid] }, appEvents: [{ type: "audit.app.deployment.create", appGuid: app.guid }],
  });
  return c.json(presentDeployment(created, linkerOf(c)), 201);
});

deploymentsApi.get("/", async (c) => {
  const principal = requireUser(c);
  const q = parseQuery(c, listSchema);
  const { total, deployments } = await listDeployments(c.var.db, {
    appGuids: q.app_guids, states: q.states, statusValues: q.status_values, statusReasons: q.status_reasons, guids: q.guids,
    orderBy: q.order_by, viewer: principal, page: q.page, perPage: q.per_page,
  });
  const l = linkerOf(c);
  return c.json(paginated(c.req.url, q, total, deployments.map((d) => presentDeployment(d, l))));
});

deploymentsApi.get("/:guid", async (c) => {
  const { deployment } = await reachableDeployment(c);
  return c.json(presentDeployment(deployment, linkerOf(c)));
});

deploymentsApi.post("/:guid/actions/cancel", async (c) => {
  const principal = requireUser(c);
  const { deployment, app } = await reachableDeployment(c);
  const refused = await cancelDeployment(c.var.db, deployment, app, principal);
  if (refused) throw unprocessable(refused);
  afterCommit(c, `cancel deployment ${deployment.guid}`, {
    wake: { apps: [app.guid] }, appEvents: [{ type: "audit.app.deployment.cancel", appGuid: app.guid }],
  });
  return c.body(null, 200);
});

// Only a paused canary deployment continues; Berth's are rolling, so this is always CC's refusal.
deploymentsApi.post("/:guid/actions/continue", async (c) => {
  const { deployment } = await reachableDeployment(c);
  throw unprocessable(`Cannot continue a deployment with status: ${deployment.statusValue} and reason: ${deployment.statusReason}`);
});
