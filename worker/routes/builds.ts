/**
 * @module /v3/builds: staging a docker package = resolving its image's
 * metadata. `POST` answers 201 STAGING at once and hands the build to its
 * Stager Durable Object, which resolves it off the request (docs/architecture.md § Control
 * plane). Builds whose registry only a cell can reach are left STAGING with
 * `staging_location` "cell" for the agent protocol's staging tasks.
 * `appBuilds` serves the app-nested list (`/v3/apps/:guid/builds`).
 */
import { Hono } from "hono";
import { z } from "zod";
import { canAccessSpace, requireUser } from "../auth/principal";
import { linkerOf, reachableApp } from "../auth/scope";
import { getApp } from "../db/apps";
import { createBuild, getBuild, listBuilds } from "../db/builds";
import { requireFeatureEnabled } from "../db/feature-flags";
import { getPackage } from "../db/packages";
import { getRegistryAccess } from "../db/registry-access";
import type { AppEnv } from "../env";
import { resourceNotFound, unprocessable } from "../errors";
import { newGuid } from "../http/ids";
import { afterCommit } from "../http/after-commit";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";
import { presentBuild } from "../presenters/builds";
import { initialStagingLocation } from "../staging/location";
import { parseReference } from "../../shared/registry/reference";
import { RegistryError } from "../../shared/registry/errors";

const createSchema = z.strictObject({
  package: z.strictObject({ guid: z.string().min(1).max(255) }),
  staging_memory_in_mb: z.number().int().min(1).optional(),
  staging_disk_in_mb: z.number().int().min(1).optional(),
  lifecycle: z.strictObject({ type: z.literal("docker"), data: z.strictObject({}) }).optional(),
});

const listFilters = {
  package_guids: filterList.optional(),
  states: filterList.optional(),
  guids: filterList.optional(),
  ...pageQuery,
};
const listSchema = z.strictObject({ app_guids: filterList.optional(), ...listFilters });
const appListSchema = z.strictObject(listFilters);

// CC's text when the package is missing or out of reach (builds_controller.rb).
const UNUSABLE_PACKAGE = "Unable to use package. Ensure that the package exists and you have access to it.";

export const builds = new Hono<AppEnv>();

builds.post("/", async (c) => {
  const principal = requireUser(c);
  const body = await parseJson(c, createSchema);
  const pkg = await getPackage(c.var.db, body.package.guid);
  if (!pkg || !(await canAccessSpace(c, pkg.spaceGuid))) throw unprocessable(UNUSABLE_PACKAGE);
  if (pkg.state !== "READY") throw unprocessable("The package is not ready to be staged.");
  await requireFeatureEnabled(c.var.db, "diego_docker");
  const app = await getApp(c.var.db, pkg.appGuid);
  if (!app) throw unprocessable(UNUSABLE_PACKAGE);

  // Where to stage is known up front only for cell-only registries; a bad reference fails in the stager with its message.
  let location: "worker" | "cell" = "worker";
  try {
    location = initialStagingLocation(parseReference(pkg.image).host, await getRegistryAccess(c.var.db));
  } catch (e) {
    if (!(e instanceof RegistryError)) throw e;
  }
  const guid = newGuid();
  const build = await createBuild(c.var.db, { guid, app: { guid: app.guid, name: app.name, spaceGuid: app.spaceGuid }, packageGuid: pkg.guid, stagingLocation: location }, principal);
  if (!build) throw unprocessable(UNUSABLE_PACKAGE);
  // The build's own Stager resolves it (the 201 does not wait); a cell-staged build is handed to a cell by the next pass, now.
  if (location === "worker") await c.env.STAGER.get(c.env.STAGER.idFromName(guid)).start(guid);
  else afterCommit(c, `cell-staged build ${guid}`, { wake: {} });
  return c.json(presentBuild(build, linkerOf(c)), 201);
});

builds.get("/", async (c) => {
  const principal = requireUser(c);
  const q = parseQuery(c, listSchema);
  const { total, builds: rows } = await listBuilds(c.var.db, {
    appGuids: q.app_guids, packageGuids: q.package_guids, states: q.states, guids: q.guids,
    viewer: principal, page: q.page, perPage: q.per_page,
  });
  const l = linkerOf(c);
  return c.json(paginated(c.req.url, q, total, rows.map((b) => presentBuild(b, l))));
});

builds.get("/:guid", async (c) => {
  const principal = requireUser(c);
  const build = await getBuild(c.var.db, c.req.param("guid"));
  if (!build || !(await canAccessSpace(c, build.spaceGuid))) throw resourceNotFound("Build");
  return c.json(presentBuild(build, linkerOf(c)));
});

/** `/v3/apps/:guid/builds`, mounted beside the apps routes. */
export const appBuilds = new Hono<AppEnv>();

appBuilds.get("/:guid/builds", async (c) => {
  const { principal, app } = await reachableApp(c, c.req.param("guid"));
  const q = parseQuery(c, appListSchema);
  const { total, builds: rows } = await listBuilds(c.var.db, {
    appGuids: [app.guid], packageGuids: q.package_guids, states: q.states, guids: q.guids,
    viewer: principal, page: q.page, perPage: q.per_page,
  });
  const l = linkerOf(c);
  return c.json(paginated(c.req.url, q, total, rows.map((b) => presentBuild(b, l))));
});
