/**
 * @module App manifests: `POST /v3/spaces/:guid/actions/apply_manifest` (the cf
 * CLI pushes through it even without a manifest file) and
 * `GET /v3/apps/:guid/manifest`. A manifest that does not parse or validate is
 * refused at once (400/422, as CC does); applying it is the job the 202 points
 * at, run after the answer by a ManifestApplier (PROCESSING, then COMPLETE or
 * FAILED with CC's error), so the CLI's polling sees CC's states.
 */
import { type Context, Hono } from "hono";
import { canAccessSpace, requireUser } from "../auth/principal";
import { reachableApp, type UserPrincipal } from "../auth/scope";
import { type App, getCurrentDroplet, listApps } from "../db/apps";
import { getPackage } from "../db/packages";
import { listProcesses } from "../db/processes";
import { listRoutes, routeUrl } from "../db/routes";
import { getSpace } from "../db/spaces";
import type { AppEnv } from "../env";
import { resourceNotFound, tooLarge } from "../errors";
import { processingJob } from "../db/jobs";
import { manifestApplierOf } from "../durable/manifest-applier";
import { MAX_BODY_BYTES } from "../http/validate";
import { manifestDiff } from "../manifests/diff";
import { manifestApp, type ManifestSource, manifestYaml } from "../manifests/generate";
import { parseManifest, readManifestApps } from "../manifests/parse";
import { accepted } from "./jobs";

export const spaceManifests = new Hono<AppEnv>();

async function writableSpace(c: Context<AppEnv>) {
  const principal = requireUser(c);
  const spaceGuid = c.req.param("guid") ?? "";
  if (!(await getSpace(c.var.db, spaceGuid, principal)) || !(await canAccessSpace(c, spaceGuid))) throw resourceNotFound("Space");
  return { principal, spaceGuid };
}

async function yamlBody(c: Context<AppEnv>): Promise<string> {
  if (Number(c.req.header("content-length") ?? "0") > MAX_BODY_BYTES) throw tooLarge(MAX_BODY_BYTES);
  const body = await c.req.arrayBuffer();
  if (body.byteLength > MAX_BODY_BYTES) throw tooLarge(MAX_BODY_BYTES);
  return new TextDecoder().decode(body);
}

/** An app's manifest as it stands: what GET /v3/apps/:guid/manifest and the diff start from. */
async function currentManifest(c: Context<AppEnv>, app: App, principal: UserPrincipal): Promise<ManifestSource> {
  const [droplet, procs, routes] = await Promise.all([
    getCurrentDroplet(c.var.db, app),
    listProcesses(c.var.db, { appGuids: [app.guid], viewer: principal, page: 1, perPage: 100 }),
    listRoutes(c.var.db, { appGuids: [app.guid], viewer: principal, page: 1, perPage: 5000 }),
  ]);
  const pkg = droplet?.packageGuid ? await getPackage(c.var.db, droplet.packageGuid) : undefined;
  return {
    name: app.name,
    env: app.environmentVariables,
    docker: pkg ? { image: pkg.image, username: pkg.username } : null,
    processes: procs.processes,
    routes: routes.routes.map(routeUrl),
  };
}

/** The cf CLI shows this diff before `cf push -f` applies the manifest. */
spaceManifests.post("/:guid/manifest_diff", async (c) => {
  const { principal, spaceGuid } = await writableSpace(c);
  const text = await yamlBody(c);
  parseManifest(text);
  const given = readManifestApps(text) as Record<string, unknown>[];
  const current = await Promise.all(given.map(async (a) => {
    const [app] = (await listApps(c.var.db, { names: [String(a.name)], spaceGuids: [spaceGuid], viewer: principal, orderBy: "created_at", page: 1, perPage: 1 })).apps;
    return app ? manifestApp(await currentManifest(c, app, principal)) : undefined;
  }));
  return c.json({ diff: manifestDiff(given, current) }, 201);
});

spaceManifests.post("/:guid/actions/apply_manifest", async (c) => {
  const { principal, spaceGuid } = await writableSpace(c);
  const text = await yamlBody(c);
  // Refused at once, as CC does; what passes is applied after the answer (durable/manifest-applier.ts).
  parseManifest(text);
  const job = await processingJob(c.var.db, "app.apply_manifest", principal.guid);
  await manifestApplierOf(c.env, job.guid).start({ job: job.guid, space: spaceGuid, manifest: text, principal });
  return accepted(c, job);
});

export const appManifest = new Hono<AppEnv>();

appManifest.get("/:guid/manifest", async (c) => {
  const { principal, app } = await reachableApp(c, c.req.param("guid"));
  const yaml = manifestYaml(await currentManifest(c, app, principal));
  return c.body(yaml, 200, { "content-type": "application/x-yaml" });
});
