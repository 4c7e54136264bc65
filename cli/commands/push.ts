/**
 * @module push and restage: cf's sequence for Docker images — the manifest
 * (from the flags or -f) applied by the API, then per app a package, a build
 * (staging = image metadata), the current droplet, a restart and stats polled
 * until an instance runs.
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { read } from "read";
import { ApiError } from "../api";
import { appsUrl, findApp, routeUrl, UsageError, type AppsUrl, type Ctx } from "../context";
import type { Action } from "../main";
import { integer } from "../../shared/flags";
import { manifestFromFile, manifestFromFlags, pushedApps, type PushedApp, type PushFlags } from "../push-manifest";
import { waitForStart } from "./apps";
import { deployRolling, parseStrategy, strategyOption } from "./deployments";

interface PushOptions extends PushFlags {
  manifest?: string;
  start: boolean;
  strategy?: string;
}

/**
 * The password as the cf CLI finds it: CF_DOCKER_PASSWORD (BERTH_DOCKER_PASSWORD
 * is an alias, read when CF's is unset), else a masked prompt on a TTY.
 */
async function dockerPassword(ctx: Ctx): Promise<string> {
  const fromEnv = ctx.env.CF_DOCKER_PASSWORD ?? ctx.env.BERTH_DOCKER_PASSWORD;
  if (fromEnv !== undefined) return fromEnv;
  if (!process.stdin.isTTY) throw new UsageError("Environment variable CF_DOCKER_PASSWORD not set.");
  ctx.out.say("Environment variable CF_DOCKER_PASSWORD not set.");
  return read({ prompt: "Docker password: ", silent: true, replace: "*" });
}

export function registerPush(program: Command, action: Action) {
  program
    .command("push [name]")
    .description("Push Docker images as new apps or sync changes to existing ones (flags, or a manifest with -f)")
    .option("-f, --manifest <file>", "manifest (cf's format) of the apps to push; flags then apply to its one app")
    .option("-o, --docker-image <image>", "Docker image to use (e.g. user/image:tag)")
    .option("--docker-username <user>", "registry user (password from CF_DOCKER_PASSWORD or a prompt)")
    .option("-c, --start-command <cmd>", "start command (runs as /bin/sh -c CMD)")
    .option("-i, --instances <n>", "number of instances", integer)
    .option("-m, --memory <size>", "memory limit (e.g. 256M, 1G)")
    .option("-k, --disk <size>", "disk limit (e.g. 512M, 1G)")
    .option("-u, --health-check-type <type>", "port, process or http")
    .option("-t, --timeout <seconds>", "time for the app to start (health check timeout)", integer)
    .option("--endpoint <path>", "http health check endpoint")
    .option("--no-start", "do not stage and start the app")
    .option("--no-route", "do not map a route")
    .option(...strategyOption)
    .action(action(async (ctx, name: string | undefined, opts: PushOptions) => push(ctx, name, opts)));

  program
    .command("restage <name>")
    .description("Stage the app's newest package again and restart it on the new droplet (as cf restage)")
    .option(...strategyOption)
    .action(action(async (ctx, name: string, opts: { strategy?: string }) => {
      const strategy = parseStrategy(opts.strategy);
      const app = await findApp(ctx, name);
      const [pkg] = (await ctx.api().get<{ resources: { guid: string }[] }>(`/v3/packages?app_guids=${app.guid}&order_by=-created_at&per_page=1`)).resources;
      if (!pkg) throw new UsageError(`App ${name} has no package to stage: push it first`);
      ctx.out.say(`Restaging app ${name}...`);
      const { build, staged } = await stageAndRestart(ctx, app.guid, pkg.guid, strategy);
      const stats = await waitRunning(ctx, app.guid);
      ctx.out.say(`\nApp ${name} is running.`);
      ctx.out.data({ app: app.guid, package: pkg.guid, build: build.guid, droplet: staged.dropletGuid, instances: stats });
    }));
}

interface NamedApp {
  guid: string;
  name: string;
  created_at: string;
}

/**
 * As the cf CLI: the manifest goes to apply_manifest (its job followed to the
 * end), then each app gets its package, build, droplet and restart. A push
 * the control plane refuses (a quota, a bad value) leaves nothing it made.
 */
export async function push(ctx: Ctx, name: string | undefined, opts: PushOptions) {
  const api = ctx.api();
  const space = ctx.space();
  const strategy = parseStrategy(opts.strategy);
  if (strategy && !opts.start) throw new UsageError("--no-start cannot be used with --strategy rolling");
  let manifest: string;
  if (opts.manifest !== undefined) {
    manifest = manifestFromFile(await readFile(opts.manifest, "utf8").catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`Could not read manifest ${opts.manifest}: ${e.code ?? e.message}`);
    }), name, opts);
  } else {
    if (name === undefined || opts.dockerImage === undefined) throw new UsageError("Incorrect Usage: give NAME and -o IMAGE, or -f manifest.yml");
    manifest = manifestFromFlags(name, opts);
  }
  const pushed = pushedApps(manifest);
  const password = pushed.some((a) => a.username !== undefined) ? await dockerPassword(ctx) : undefined;
  ctx.out.say(`Pushing ${pushed.length === 1 ? `app ${pushed[0]!.name}` : `apps ${pushed.map((a) => a.name).join(", ")}`} to space ${space.name}...`);

  const inSpace = async (): Promise<NamedApp[]> => pushed.length === 0 ? [] : api.all<NamedApp>(`/v3/apps?${new URLSearchParams({ names: pushed.map((a) => a.name).join(","), space_guids: space.guid })}`);
  // When the job began (the API's clock): what was created since is this push's, for the undo below.
  let since: string | undefined;
  const results: Record<string, unknown>[] = [];
  try {
    const job = await followJob(ctx, await api.postYaml(`/v3/spaces/${space.guid}/actions/apply_manifest`, manifest));
    since = job.created_at;
    if (job.state === "FAILED") throw jobError(job);
    const [apps, urls] = await Promise.all([inSpace(), appsUrl(ctx)]);
    for (const p of pushed) {
      const app = apps.find((a) => a.name === p.name);
      if (!app) throw new ApiError(404, "CF-ResourceNotFound", `App '${p.name}' not found`);
      results.push(await pushOne(ctx, app, p, password, opts.start, strategy, urls));
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 422 && since !== undefined) {
      const made = (await inSpace().catch(() => [])).filter((a) => a.created_at >= since!);
      for (const app of made) await removeMade(ctx, app.guid, since).catch(() => undefined);
      if (made.length > 0) ctx.out.say(`Push refused; removed what it had made (${made.map((a) => `app ${a.name}`).join(", ")}).`);
    }
    throw e;
  }
  ctx.out.data(results.length === 1 ? results[0] : results);
}

/** The package of one pushed app, then (unless --no-start) its build, droplet and restart. */
async function pushOne(ctx: Ctx, app: NamedApp, p: PushedApp, password: string | undefined, start: boolean, strategy: "rolling" | undefined, urls: AppsUrl): Promise<Record<string, unknown>> {
  const api = ctx.api();
  const pkg = await api.post<{ guid: string }>("/v3/packages", {
    type: "docker",
    relationships: { app: { data: { guid: app.guid } } },
    data: { image: p.image, ...(p.username !== undefined ? { username: p.username, password } : {}) },
  });
  // Read while the app stages: only the last message needs them.
  const routesRead = api.all<{ url: string }>(`/v3/apps/${app.guid}/routes`).then((rs) => rs.map((r) => routeUrl(r.url, urls)));
  routesRead.catch(() => undefined);
  const routeLine = (routes: string[]) => (routes.length > 0 ? `\nroute: ${routes.join(", ")}` : "");
  if (!start) {
    await api.post(`/v3/apps/${app.guid}/actions/stop`);
    const routes = await routesRead;
    ctx.out.say(`OK (not started)${routeLine(routes)}`);
    return { app: app.guid, package: pkg.guid, url: routes[0] ?? null, started: false };
  }
  ctx.out.say(`Staging app ${app.name} and resolving image ${p.image}...`);
  const { build, staged } = await stageAndRestart(ctx, app.guid, pkg.guid, strategy);
  const stats = await waitRunning(ctx, app.guid);
  const routes = await routesRead;
  ctx.out.say(`\nApp ${app.name} is running.${routeLine(routes)}`);
  return { app: app.guid, package: pkg.guid, build: build.guid, droplet: staged.dropletGuid, url: routes[0] ?? null, instances: stats };
}

/** Deletes an app this push made, and the routes made since `since` that go to that app alone. */
async function removeMade(ctx: Ctx, appGuid: string, since: string): Promise<void> {
  const api = ctx.api();
  const routes = await api.all<{ guid: string; created_at: string; destinations: { app: { guid: string } }[] }>(`/v3/apps/${appGuid}/routes`);
  await api.delete(`/v3/apps/${appGuid}`);
  for (const r of routes) {
    if (r.created_at >= since && r.destinations.every((d) => d.app.guid === appGuid)) await api.delete(`/v3/routes/${r.guid}`);
  }
}

interface Job {
  state: string;
  created_at: string;
  errors: { title: string; detail: string; code?: number }[];
}

const jobError = (job: Job) => {
  const e = job.errors[0];
  return new ApiError(422, e?.title ?? "CF-JobFailed", e?.detail ?? "The job failed", e?.code);
};

/** Polls a job (CC's Location) until it has ended, COMPLETE or FAILED: at once, then every BERTH_JOB_POLL_MS. */
async function followJob(ctx: Ctx, location: string | null): Promise<Job> {
  if (location === null) throw new ApiError(0, "NoJob", "The API answered without the job to follow");
  const intervalMs = Number(ctx.env.BERTH_JOB_POLL_MS ?? 50);
  const deadline = Date.now() + Number(ctx.env.BERTH_JOB_TIMEOUT_MS ?? 300_000);
  for (;;) {
    const job = await ctx.api().get<Job>(new URL(location).pathname);
    if (job.state === "COMPLETE" || job.state === "FAILED") return job;
    if (Date.now() > deadline) throw new Error(`Job ${location} did not finish in time`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Stages `packageGuid`, makes its droplet current and restarts the app (push,
 * restage); with the rolling strategy a deployment of the droplet replaces the
 * instances instead, without downtime.
 */
async function stageAndRestart(ctx: Ctx, appGuid: string, packageGuid: string, strategy?: "rolling") {
  const api = ctx.api();
  const build = await api.post<{ guid: string }>("/v3/builds", { package: { guid: packageGuid } });
  const staged = { dropletGuid: await pollBuild(ctx, build.guid) };
  // The droplet's image is only for the message: read beside the next step, not before it.
  const image = api.get<{ image?: string }>(`/v3/droplets/${staged.dropletGuid}`).then((d) => d.image, () => undefined);
  if (strategy === "rolling") {
    ctx.out.say(`Staged: ${(await image) ?? "(image)"}`);
    await deployRolling(ctx, appGuid, staged.dropletGuid);
    return { build, staged };
  }
  await api.patch(`/v3/apps/${appGuid}/relationships/current_droplet`, { data: { guid: staged.dropletGuid } });
  ctx.out.say(`Staged: ${(await image) ?? "(image)"}`);
  ctx.out.say("Starting instances...");
  await api.post(`/v3/apps/${appGuid}/actions/restart`);
  return { build, staged };
}

/** Prints the instances' states as they change until they run. */
function waitRunning(ctx: Ctx, appGuid: string) {
  let last = "";
  return waitForStart(ctx, appGuid, {
    onStats(s) {
      const line = s.map((i) => `#${i.index} ${i.state.toLowerCase()}${i.details ? ` (${i.details})` : ""}`).join("   ");
      if (line !== last) ctx.out.say(`   ${line}`);
      last = line;
    },
  });
}

/** The droplet guid of the build once STAGED. */
async function pollBuild(ctx: Ctx, guid: string): Promise<string> {
  const deadline = Date.now() + Number(ctx.env.BERTH_STAGING_TIMEOUT_MS ?? 900_000);
  // Resolving a cached image's metadata takes a fraction of a second: a coarse poll would be most of the wait.
  const intervalMs = Number(ctx.env.BERTH_BUILD_POLL_MS ?? 100);
  for (;;) {
    const b = await ctx.api().get<{ state: string; error: string | null; droplet: { guid: string } | null }>(`/v3/builds/${guid}`);
    if (b.state === "STAGED" && b.droplet) return b.droplet.guid;
    if (b.state === "FAILED") throw new ApiError(422, "CF-StagingError", `Staging failed: ${b.error ?? "unknown error"}`);
    if (Date.now() > deadline) throw new Error("Staging timed out");
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
