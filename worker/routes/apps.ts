/**
 * @module /v3/apps: Docker-lifecycle apps, their env vars, lifecycle actions,
 * current droplet, and the app-nested process, package and route lists.
 * With diego_docker off, creating, starting and restarting answer 403
 * CF-FeatureDisabled (admins too); stop, delete and updates stay allowed (CF).
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { canAccessSpace, requireUser } from "../auth/principal";
import { linkerOf, reachableApp } from "../auth/scope";
import {
  type App, type AppAction, MAX_ENV_JSON_BYTES, changeAppState, createApp, deleteApp, getCurrentDroplet, listApps, mergeEnvironmentVariables, renameApp, setCurrentDroplet,
} from "../db/apps";
import { flagOf, flagQuery, requireEnabled, requireFeatureEnabled } from "../db/feature-flags";
import { listPackages } from "../db/packages";
import { getProcessByType } from "../db/processes";
import { listRoutes, routeUrl } from "../db/routes";
import { getOrganization } from "../db/organizations";
import { getSpace } from "../db/spaces";
import type { AppEnv } from "../env";
import { acceptedWithJob } from "./jobs";
import { resourceNotFound, unprocessable } from "../errors";
import { envPatchSchema, envVarsSchema } from "../http/env-vars";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";
import { afterCommit } from "../http/after-commit";
import { presentApp, presentAppEnv, presentEnvironmentVariables } from "../presenters/apps";
import { presentDroplet } from "../presenters/droplets";
import { presentPackage } from "../presenters/packages";
import { presentProcess } from "../presenters/processes";
import { appStartQuotaReads, checkAppStartQuotas, type AppStartQuotaRows } from "../quotas/repo";
import { appsDomainGuid, presentRoute } from "../presenters/routes";
import { listProcessesPage, patchProcess, processStats, scaleProcessAction } from "./processes";

const appName = z.string().min(1).max(255).regex(/^[^\p{Cc}]+$/u, "must not contain control characters");
const guid = z.string().min(1).max(255);
const toOne = z.strictObject({ data: z.strictObject({ guid }) });
// Berth runs Docker images only: the docker lifecycle, whose data must be {} (CC).
const dockerLifecycle = z.strictObject({
  type: z.literal("docker", { error: "must be docker (Berth runs Docker images only)" }),
  data: z.strictObject({}),
});

const createSchema = z.strictObject({
  name: appName,
  relationships: z.strictObject({ space: toOne }),
  lifecycle: dockerLifecycle.optional(),
  environment_variables: envVarsSchema.optional(),
});

// cf rename sends `metadata: {}`; Berth keeps no labels or annotations, so only an empty one is taken.
const noMetadata = z.strictObject({
  labels: z.record(z.string(), z.unknown()).refine((o) => Object.keys(o).length === 0, "Berth keeps no labels").optional(),
  annotations: z.record(z.string(), z.unknown()).refine((o) => Object.keys(o).length === 0, "Berth keeps no annotations").optional(),
});

const updateSchema = z.strictObject({ name: appName.optional(), lifecycle: dockerLifecycle.optional(), metadata: noMetadata.optional() });

const listSchema = z.strictObject({
  names: filterList.optional(),
  space_guids: filterList.optional(),
  guids: filterList.optional(),
  order_by: z.enum(["created_at", "-created_at", "updated_at", "-updated_at", "name", "-name"]).default("created_at"),
  ...pageQuery,
});

const envPatchBody = z.strictObject({ var: envPatchSchema });
const currentDropletBody = toOne;

const envTooLarge = () => unprocessable(`Environment variables would exceed ${MAX_ENV_JSON_BYTES} bytes.`);

const INVALID_SPACE = "Invalid space. Ensure that the space exists and you have access to it.";

export const apps = new Hono<AppEnv>();

apps.post("/", async (c) => {
  const principal = requireUser(c);
  const body = await parseJson(c, createSchema);
  const spaceGuid = body.relationships.space.data.guid;
  if (new TextEncoder().encode(JSON.stringify(body.environment_variables ?? {})).byteLength > MAX_ENV_JSON_BYTES) throw envTooLarge();
  if (!(await getSpace(c.var.db, spaceGuid, principal)) || !(await canAccessSpace(c, spaceGuid))) throw unprocessable(INVALID_SPACE);
  await requireFeatureEnabled(c.var.db, "diego_docker");
  const app = await createApp(c.var.db, { name: body.name, spaceGuid, environmentVariables: body.environment_variables ?? {} }, principal);
  if (!app) throw unprocessable(`App with the name '${body.name}' already exists.`);
  afterCommit(c, `create app ${app.guid}`, { appEvents: [{ type: "audit.app.create", appGuid: app.guid }] });
  return c.json(presentApp(app, linkerOf(c)), 201);
});

apps.get("/", async (c) => {
  const principal = requireUser(c);
  const q = parseQuery(c, listSchema);
  const { total, apps: rows } = await listApps(c.var.db, {
    names: q.names, spaceGuids: q.space_guids, guids: q.guids, viewer: principal,
    orderBy: q.order_by, page: q.page, perPage: q.per_page,
  });
  const l = linkerOf(c);
  return c.json(paginated(c.req.url, q, total, rows.map((a) => presentApp(a, l))));
});

apps.get("/:guid", async (c) => {
  const { app } = await reachableApp(c, c.req.param("guid"));
  return c.json(presentApp(app, linkerOf(c)));
});

apps.patch("/:guid", async (c) => {
  const { principal, app } = await reachableApp(c, c.req.param("guid"));
  const body = await parseJson(c, updateSchema);
  if (body.name !== undefined) {
    const outcome = await renameApp(c.var.db, app, body.name, principal);
    if (outcome === "taken") throw unprocessable(`App with the name '${body.name}' already exists.`);
    if (outcome === "gone") throw resourceNotFound("App");
    afterCommit(c, `rename app ${app.guid}`, { appEvents: [{ type: "audit.app.update", appGuid: app.guid, request: { name: body.name } }] });
  }
  const { app: after } = await reachableApp(c, app.guid);
  return c.json(presentApp(after, linkerOf(c)));
});

apps.delete("/:guid", async (c) => {
  const { principal, app } = await reachableApp(c, c.req.param("guid"));
  const sources = await deleteApp(c.var.db, app, principal);
  // Freed room may fit instances waiting for a cell.
  afterCommit(c, `delete app ${app.guid}`, { sources, wake: {} });
  return acceptedWithJob(c, "app.delete", principal);
});

// --- lifecycle actions -------------------------------------------------------

async function act(c: Context<AppEnv>, action: AppAction) {
  const { principal, app } = await reachableApp(c, c.req.param("guid") ?? "");
  if (action !== "stop") {
    // CC's order: the flag's 403, the droplet's 422, then (a stopped app starting) the quotas', read in the flag's batch.
    const stopped = app.state === "STOPPED";
    const [flag, ...quotaRows] = stopped
      ? await c.var.db.batch([flagQuery(c.var.db, "diego_docker"), ...appStartQuotaReads(c.var.db, app)])
      : [await flagQuery(c.var.db, "diego_docker")];
    requireEnabled(flagOf("diego_docker", flag[0]));
    if (!app.currentDropletGuid) throw unprocessable("Assign a droplet before starting this app.");
    if (stopped) await checkAppStartQuotas(c.var.db, app, quotaRows as AppStartQuotaRows);
  }
  const after = await changeAppState(c.var.db, app, action, principal);
  if (!after) throw resourceNotFound("App");
  afterCommit(c, `${action} app ${app.guid}`, { wake: { apps: [app.guid] }, appEvents: [{ type: `audit.app.${action}`, appGuid: app.guid }] });
  return c.json(presentApp(after, linkerOf(c)));
}

apps.post("/:guid/actions/start", (c) => act(c, "start"));
apps.post("/:guid/actions/stop", (c) => act(c, "stop"));
apps.post("/:guid/actions/restart", (c) => act(c, "restart"));

// --- current droplet -------------------------------------------------------------

const currentDropletRelationship = (c: Context<AppEnv>, app: App) => ({
  data: app.currentDropletGuid ? { guid: app.currentDropletGuid } : null,
  links: {
    self: linkerOf(c)(`/v3/apps/${app.guid}/relationships/current_droplet`),
    related: linkerOf(c)(`/v3/apps/${app.guid}/droplets/current`),
  },
});

apps.get("/:guid/relationships/current_droplet", async (c) => {
  const { app } = await reachableApp(c, c.req.param("guid"));
  return c.json(currentDropletRelationship(c, app));
});

apps.patch("/:guid/relationships/current_droplet", async (c) => {
  const { principal, app } = await reachableApp(c, c.req.param("guid"));
  const body = await parseJson(c, currentDropletBody);
  const ok = await setCurrentDroplet(c.var.db, app, body.data.guid, principal);
  if (!ok) throw unprocessable("Unable to assign current droplet. Ensure the droplet exists and belongs to this app.");
  afterCommit(c, `set droplet of app ${app.guid}`, { appEvents: [{ type: "audit.app.droplet.mapped", appGuid: app.guid, request: { droplet_guid: body.data.guid } }] });
  const { app: after } = await reachableApp(c, app.guid);
  return c.json(currentDropletRelationship(c, after));
});

apps.get("/:guid/droplets/current", async (c) => {
  const { app } = await reachableApp(c, c.req.param("guid"));
  const droplet = await getCurrentDroplet(c.var.db, app);
  if (!droplet) throw resourceNotFound("Droplet");
  return c.json(presentDroplet(droplet, linkerOf(c)));
});

// --- environment variables -----------------------------------------------------

apps.get("/:guid/environment_variables", async (c) => {
  const { app } = await reachableApp(c, c.req.param("guid"));
  return c.json(presentEnvironmentVariables(app.guid, app.environmentVariables, linkerOf(c)));
});

apps.patch("/:guid/environment_variables", async (c) => {
  const { principal, app } = await reachableApp(c, c.req.param("guid"));
  const body = await parseJson(c, envPatchBody);
  const merged = await mergeEnvironmentVariables(c.var.db, app, body.var, principal);
  if (merged === undefined) throw resourceNotFound("App");
  if (merged === "too_large") throw envTooLarge();
  afterCommit(c, `env of app ${app.guid}`, { appEvents: [{ type: "audit.app.update", appGuid: app.guid, request: { environment_variables: body.var } }] });
  return c.json(presentEnvironmentVariables(app.guid, merged, linkerOf(c)));
});

apps.get("/:guid/env", async (c) => {
  const { principal, app } = await reachableApp(c, c.req.param("guid"));
  const [space, web, routes] = await Promise.all([
    getSpace(c.var.db, app.spaceGuid, principal),
    getProcessByType(c.var.db, app.guid, "web"),
    listRoutes(c.var.db, { appGuids: [app.guid], viewer: principal, page: 1, perPage: 5000 }),
  ]);
  const org = space ? await getOrganization(c.var.db, space.organizationGuid, principal) : undefined;
  return c.json(presentAppEnv(app, {
    appGuid: app.guid,
    appName: app.name,
    spaceGuid: app.spaceGuid,
    spaceName: space?.name ?? "",
    organization: org ? { guid: org.guid, name: org.name } : null,
    uris: routes.routes.map(routeUrl),
    memoryMb: web?.memoryInMb ?? 0,
    diskMb: web?.diskInMb ?? 0,
  }));
});

// --- nested lists and processes ----------------------------------------------------

apps.get("/:guid/processes", async (c) => {
  const { principal, app } = await reachableApp(c, c.req.param("guid"));
  return listProcessesPage(c, principal, app.guid);
});

async function processOfApp(c: Context<AppEnv>) {
  const { principal, app } = await reachableApp(c, c.req.param("guid") ?? "");
  const process = await getProcessByType(c.var.db, app.guid, c.req.param("type") ?? "");
  if (!process) throw resourceNotFound("Process");
  return { principal, process };
}

apps.get("/:guid/processes/:type", async (c) => {
  const { process } = await processOfApp(c);
  return c.json(presentProcess(process, linkerOf(c)));
});

apps.patch("/:guid/processes/:type", async (c) => {
  const { principal, process } = await processOfApp(c);
  return patchProcess(c, principal, process);
});

apps.post("/:guid/processes/:type/actions/scale", async (c) => {
  const { principal, process } = await processOfApp(c);
  return scaleProcessAction(c, principal, process);
});

apps.get("/:guid/processes/:type/stats", async (c) => {
  const { process } = await processOfApp(c);
  return processStats(c, process);
});

const nestedPage = z.strictObject({ ...pageQuery });

apps.get("/:guid/packages", async (c) => {
  const { principal, app } = await reachableApp(c, c.req.param("guid"));
  const q = parseQuery(c, nestedPage);
  const { total, packages } = await listPackages(c.var.db, { appGuids: [app.guid], viewer: principal, page: q.page, perPage: q.per_page });
  const l = linkerOf(c);
  return c.json(paginated(c.req.url, q, total, packages.map((p) => presentPackage(p, l))));
});

apps.get("/:guid/routes", async (c) => {
  const { principal, app } = await reachableApp(c, c.req.param("guid"));
  const q = parseQuery(c, nestedPage);
  const { total, routes } = await listRoutes(c.var.db, { appGuids: [app.guid], viewer: principal, page: q.page, perPage: q.per_page });
  const l = linkerOf(c);
  const domainGuid = await appsDomainGuid(c.env.APPS_DOMAIN);
  return c.json(paginated(c.req.url, q, total, routes.map((r) => presentRoute(r, domainGuid, l))));
});
