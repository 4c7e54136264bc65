/**
 * @module push: cf's sequence for a Docker image — app, settings, package, build
 * (staging = image metadata), current droplet, restart, poll stats — then the route.
 */
import type { Command } from "commander";
import { read } from "read";
import { ApiError } from "../api";
import { appsUrl, findApp, routeUrl, UsageError, type Ctx } from "../context";
import type { Action } from "../main";
import { integer } from "../../shared/flags";
import { parseMegabytes } from "../units";
import { waitForStart, webProcess } from "./apps";
import { ensureRoute } from "./routes";
import { deployRolling, parseStrategy, strategyOption } from "./deployments";

interface PushOptions {
  dockerImage?: string;
  dockerUsername?: string;
  startCommand?: string;
  instances?: number;
  memory?: string;
  disk?: string;
  healthCheckType?: string;
  timeout?: number;
  endpoint?: string;
  start: boolean;
  route: boolean;
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
    .command("push <name>")
    .description("Push a Docker image as a new app or sync changes to an existing app")
    .requiredOption("-o, --docker-image <image>", "Docker image to use (e.g. user/image:tag)")
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
    .action(action(async (ctx, name: string, opts: PushOptions) => push(ctx, name, opts)));

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

export async function push(ctx: Ctx, name: string, opts: PushOptions) {
  const api = ctx.api();
  const space = ctx.space();
  if (opts.healthCheckType && !["port", "process", "http"].includes(opts.healthCheckType))
    throw new UsageError(`Invalid health check type '${opts.healthCheckType}': use port, process or http`);
  if (opts.endpoint && opts.healthCheckType !== "http") throw new UsageError("--endpoint requires -u http");
  const strategy = parseStrategy(opts.strategy);
  if (strategy && !opts.start) throw new UsageError("--no-start cannot be used with --strategy rolling");
  const password = opts.dockerUsername ? await dockerPassword(ctx) : undefined;

  ctx.out.say(`Pushing app ${name} to space ${space.name}...`);
  const existing = (await api.all<{ guid: string; name: string }>(`/v3/apps?names=${encodeURIComponent(name)}&space_guids=${space.guid}`))
    .find((a) => a.name === name);
  const app = existing ?? (await api.post<{ guid: string }>("/v3/apps", {
    name,
    lifecycle: { type: "docker", data: {} },
    relationships: { space: { data: { guid: space.guid } } },
  }));

  // What this push made, undone if the control plane refuses a step (a quota, a bad value): a refused push leaves nothing behind.
  const undo: (() => Promise<unknown>)[] = existing ? [] : [() => api.delete(`/v3/apps/${app.guid}`)];
  let url: string | undefined;
  let pkg: { guid: string };
  let build: { guid: string };
  let staged: { dropletGuid: string; image?: string };
  try {
    const proc = await webProcess(ctx, app.guid);
    const processPatch: Record<string, unknown> = {};
    if (opts.startCommand !== undefined) processPatch.command = opts.startCommand;
    if (opts.healthCheckType || opts.timeout || opts.endpoint) {
      const data: Record<string, unknown> = {};
      if (opts.timeout) data.timeout = opts.timeout;
      if (opts.endpoint) data.endpoint = opts.endpoint;
      processPatch.health_check = { type: opts.healthCheckType ?? "port", data };
    }
    if (Object.keys(processPatch).length) await api.patch(`/v3/processes/${proc.guid}`, processPatch);
    const scale: Record<string, number> = {};
    if (opts.instances !== undefined) scale.instances = opts.instances;
    if (opts.memory) scale.memory_in_mb = parseMegabytes(opts.memory);
    if (opts.disk) scale.disk_in_mb = parseMegabytes(opts.disk);
    if (Object.keys(scale).length) await api.post(`/v3/processes/${proc.guid}/actions/scale`, scale);

    // The URL that reaches the app: the routers' scheme and port, as the API tells.
    if (opts.route) {
      const route = await ensureRoute(ctx, { host: name, appGuid: app.guid, spaceGuid: space.guid });
      if (route.created) undo.push(() => api.delete(`/v3/routes/${route.guid}`));
      url = routeUrl(route.url, await appsUrl(ctx));
    }

    pkg = await api.post<{ guid: string }>("/v3/packages", {
      type: "docker",
      relationships: { app: { data: { guid: app.guid } } },
      data: { image: opts.dockerImage, ...(opts.dockerUsername ? { username: opts.dockerUsername, password } : {}) },
    });

    if (!opts.start) {
      await api.post(`/v3/apps/${app.guid}/actions/stop`);
      ctx.out.say(`OK (not started)${url ? `\nroute: ${url}` : ""}`);
      ctx.out.data({ app: app.guid, package: pkg.guid, url: url ?? null, started: false });
      return;
    }

    ctx.out.say(`Staging app and resolving image ${opts.dockerImage}...`);
    ({ build, staged } = await stageAndRestart(ctx, app.guid, pkg.guid, strategy));
  } catch (e) {
    if (e instanceof ApiError && e.status === 422 && undo.length > 0) {
      for (const step of undo.reverse()) await step().catch(() => undefined);
      ctx.out.say(`Push refused; removed what it had made (${existing ? "its route" : `app ${name}`}).`);
    }
    throw e;
  }
  const stats = await waitRunning(ctx, app.guid);
  ctx.out.say(`\nApp ${name} is running.${url ? `\nroute: ${url}` : ""}`);
  ctx.out.data({ app: app.guid, package: pkg.guid, build: build.guid, droplet: staged.dropletGuid, url: url ?? null, instances: stats });
}

/**
 * Stages `packageGuid`, makes its droplet current and restarts the app (push,
 * restage); with the rolling strategy a deployment of the droplet replaces the
 * instances instead, without downtime.
 */
async function stageAndRestart(ctx: Ctx, appGuid: string, packageGuid: string, strategy?: "rolling") {
  const api = ctx.api();
  const build = await api.post<{ guid: string }>("/v3/builds", { package: { guid: packageGuid } });
  const staged = await pollBuild(ctx, build.guid);
  ctx.out.say(`Staged: ${staged.image ?? "(image)"}`);
  if (strategy === "rolling") {
    await deployRolling(ctx, appGuid, staged.dropletGuid);
    return { build, staged };
  }
  await api.patch(`/v3/apps/${appGuid}/relationships/current_droplet`, { data: { guid: staged.dropletGuid } });
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

async function pollBuild(ctx: Ctx, guid: string): Promise<{ dropletGuid: string; image?: string }> {
  const deadline = Date.now() + Number(ctx.env.BERTH_STAGING_TIMEOUT_MS ?? 900_000);
  for (;;) {
    const b = await ctx.api().get<{ state: string; error: string | null; droplet: { guid: string } | null }>(`/v3/builds/${guid}`);
    if (b.state === "STAGED" && b.droplet) {
      const d = await ctx.api().get<{ image?: string }>(`/v3/droplets/${b.droplet.guid}`);
      return { dropletGuid: b.droplet.guid, image: d.image };
    }
    if (b.state === "FAILED") throw new ApiError(422, "CF-StagingError", `Staging failed: ${b.error ?? "unknown error"}`);
    if (Date.now() > deadline) throw new Error("Staging timed out");
    await new Promise((r) => setTimeout(r, 300));
  }
}
