/** @module apps, app, scale, start, stop, restart, delete. */
import type { Command } from "commander";
import { integer } from "../../shared/flags";
import { ApiError } from "../api";
import { appsUrl, findApp, routeUrl, type Ctx } from "../context";
import type { Action } from "../main";
import { deployRolling, parseStrategy, strategyOption } from "./deployments";
import { formatBytes, formatMegabytes, parseMegabytes } from "../units";

export interface ProcessResource {
  guid: string;
  type: string;
  instances: number;
  memory_in_mb: number;
  disk_in_mb: number;
  command: string | null;
  relationships: { app: { data: { guid: string } } };
}

export interface InstanceStats {
  index: number;
  state: string;
  host?: string;
  uptime?: number;
  details?: string | null;
  instance_ports?: { external: number; internal: number }[];
  usage?: { cpu?: number; mem?: number; disk?: number; time?: string };
  mem_quota?: number;
  disk_quota?: number;
}

export const webProcess = (ctx: Ctx, appGuid: string) => ctx.api().get<ProcessResource>(`/v3/apps/${appGuid}/processes/web`);
export const processStats = async (ctx: Ctx, processGuid: string) =>
  (await ctx.api().get<{ resources: InstanceStats[] }>(`/v3/processes/${processGuid}/stats`)).resources;

interface RouteResource {
  url: string;
  destinations: { app: { guid: string } }[];
}

/** The URLs that reach an app's routes. */
export async function appRoutes(ctx: Ctx, appGuid: string): Promise<string[]> {
  const [routes, apps] = await Promise.all([ctx.api().all<RouteResource>(`/v3/apps/${appGuid}/routes`), appsUrl(ctx)]);
  return routes.map((r) => routeUrl(r.url, apps));
}

interface SpaceSummary {
  name: string;
  guid: string;
  state: string;
  instances: number;
  running: number;
  routes: string[];
}

/**
 * Every app of a space with its web process's instance counts and route URLs,
 * in four calls however many apps there are (up to 5000 of each): apps,
 * processes with their stats (include=stats), routes, and /v3/info.
 */
export async function spaceSummary(ctx: Ctx, spaceGuid: string): Promise<SpaceSummary[]> {
  const api = ctx.api();
  const q = `space_guids=${spaceGuid}&per_page=5000`;
  type ProcessList = { resources: ProcessResource[]; included?: { stats?: { guid: string; resources: InstanceStats[] }[] } };
  const [apps, processes, routes, urls] = await Promise.all([
    api.all<{ guid: string; name: string; state: string }>(`/v3/apps?${q}`),
    api.get<ProcessList>(`/v3/processes?${q}&types=web&include=stats`),
    api.all<RouteResource>(`/v3/routes?${q}`),
    appsUrl(ctx),
  ]);
  const stats = new Map((processes.included?.stats ?? []).map((s) => [s.guid, s.resources]));
  // By app: the newest web process (oldest first in the list) is the app's, also while a deployment rolls.
  const procs = new Map(processes.resources.map((p) => [p.relationships.app.data.guid, p]));
  return apps.map((app) => ({
    name: app.name,
    guid: app.guid,
    state: app.state,
    instances: procs.get(app.guid)?.instances ?? 0,
    running: (stats.get(procs.get(app.guid)?.guid ?? "") ?? []).filter((s) => s.state === "RUNNING").length,
    routes: routes.filter((r) => r.destinations.some((d) => d.app.guid === app.guid)).map((r) => routeUrl(r.url, urls)),
  }));
}

export function instanceRows(stats: InstanceStats[], now = Date.now()): (string | number)[][] {
  const ofQuota = (used: number | undefined, quota: number | undefined) => (used !== undefined ? `${formatBytes(used)} of ${quota ? formatBytes(quota) : "?"}` : "");
  return stats.map((s) => {
    const since = s.uptime !== undefined && s.state === "RUNNING" ? new Date(now - s.uptime * 1000).toISOString() : "";
    const cpu = s.usage?.cpu !== undefined ? `${(s.usage.cpu * 100).toFixed(1)}%` : "";
    const port = s.instance_ports?.[0]?.external;
    const hostPort = s.host && port ? `${s.host}:${port}` : "";
    return [`#${s.index}`, s.state.toLowerCase(), since, cpu, ofQuota(s.usage?.mem, s.mem_quota), ofQuota(s.usage?.disk, s.disk_quota), hostPort, s.details ?? ""];
  });
}

/** The current droplet's image (cf app's "docker image:"), or null before the first staging. */
async function dockerImage(ctx: Ctx, appGuid: string): Promise<string | null> {
  try {
    return (await ctx.api().get<{ image: string | null }>(`/v3/apps/${appGuid}/droplets/current`)).image;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

export function registerApps(program: Command, action: Action) {
  program
    .command("apps")
    .description("List all apps in the target space")
    .action(action(async (ctx) => {
      const space = ctx.space();
      ctx.out.say(`Getting apps in space ${space.name}...\n`);
      const apps = await spaceSummary(ctx, space.guid);
      const rows = apps.map((a) => [a.name, a.state.toLowerCase(), `web:${a.running}/${a.instances}`, a.routes.join(", ")]);
      if (apps.length === 0) ctx.out.say("No apps found");
      else ctx.out.table(["name", "requested state", "processes", "routes"], rows);
      ctx.out.data(apps);
    }));

  program
    .command("app <name>")
    .description("Show the health and status of an app")
    .action(action(async (ctx, name: string) => {
      const app = await findApp(ctx, name);
      const [procs, routes, image] = await Promise.all([
        ctx.api().all<ProcessResource>(`/v3/apps/${app.guid}/processes`),
        appRoutes(ctx, app.guid),
        dockerImage(ctx, app.guid),
      ]);
      const processes = await Promise.all(procs.map(async (p) => ({ ...p, stats: await processStats(ctx, p.guid) })));
      ctx.out.say(`Showing health and status for app ${name} in space ${ctx.space().name}...\n`);
      ctx.out.say(`name:              ${app.name}\nrequested state:   ${app.state.toLowerCase()}\nroutes:            ${routes.join(", ")}\ndocker image:      ${image ?? ""}\n`);
      for (const p of processes) {
        const running = p.stats.filter((s) => s.state === "RUNNING").length;
        ctx.out.say(`type:           ${p.type}\ninstances:      ${running}/${p.instances}\nmemory usage:   ${formatMegabytes(p.memory_in_mb)}\nstart command:  ${p.command ?? ""}`);
        ctx.out.table(["", "state", "since", "cpu", "memory", "disk", "host:port", "details"], instanceRows(p.stats));
        ctx.out.say("");
      }
      const web = processes.find((p) => p.type === "web");
      ctx.out.data({ app, docker_image: image, process: web && { ...web, stats: undefined }, routes, instances: web?.stats ?? [], processes });
    }));

  program
    .command("scale <name>")
    .description("Change or view the instance count, memory or disk of an app")
    .option("-i, --instances <n>", "number of instances", integer)
    .option("-m, --memory <size>", "memory limit (e.g. 256M, 1G)")
    .option("-k, --disk <size>", "disk limit (e.g. 512M, 1G)")
    .action(action(async (ctx, name: string, opts: { instances?: number; memory?: string; disk?: string }) => {
      const app = await findApp(ctx, name);
      const body: Record<string, number> = {};
      if (opts.instances !== undefined) body.instances = opts.instances;
      if (opts.memory) body.memory_in_mb = parseMegabytes(opts.memory);
      if (opts.disk) body.disk_in_mb = parseMegabytes(opts.disk);
      const proc = Object.keys(body).length
        ? await ctx.api().post<ProcessResource>(`/v3/apps/${app.guid}/processes/web/actions/scale`, body)
        : await webProcess(ctx, app.guid);
      ctx.out.say(`Scaling app ${name}...\nOK\n\ninstances: ${proc.instances}\nmemory:    ${formatMegabytes(proc.memory_in_mb)}\ndisk:      ${formatMegabytes(proc.disk_in_mb)}`);
      ctx.out.data(proc);
    }));

  for (const verb of ["start", "stop"] as const) {
    program
      .command(`${verb} <name>`)
      .description(`${verb[0]!.toUpperCase()}${verb.slice(1)} an app`)
      .action(action(async (ctx, name: string) => {
        const app = await findApp(ctx, name);
        ctx.out.say(`${verb === "stop" ? "Stopping" : "Starting"} app ${name}...`);
        const updated = await ctx.api().post(`/v3/apps/${app.guid}/actions/${verb}`);
        if (verb !== "stop") await waitForStart(ctx, app.guid);
        ctx.out.say("OK");
        ctx.out.data(updated);
      }));
  }

  program
    .command("restart <name>")
    .description("Restart an app (with --strategy rolling: without downtime, through a deployment)")
    .option(...strategyOption)
    .action(action(async (ctx, name: string, opts: { strategy?: string }) => {
      const strategy = parseStrategy(opts.strategy);
      const app = await findApp(ctx, name);
      ctx.out.say(`Restarting app ${name}...`);
      if (strategy === "rolling") {
        const deployment = await deployRolling(ctx, app.guid);
        ctx.out.say("OK");
        ctx.out.data({ app: app.guid, deployment: deployment.guid });
        return;
      }
      const updated = await ctx.api().post(`/v3/apps/${app.guid}/actions/restart`);
      await waitForStart(ctx, app.guid);
      ctx.out.say("OK");
      ctx.out.data(updated);
    }));

  program
    .command("delete <name>")
    .description("Delete an app")
    .option("-f, --force", "do not ask (the CLI never prompts without a TTY)")
    .action(action(async (ctx, name: string) => {
      const app = await findApp(ctx, name);
      ctx.out.say(`Deleting app ${name}...`);
      await ctx.api().delete(`/v3/apps/${app.guid}`);
      ctx.out.say("OK");
      ctx.out.data({ deleted: app.guid });
    }));
}

/** An error the push/start poll raises when every instance crashed (cf's AllInstancesCrashedError). */
export class AllInstancesCrashed extends Error {}

/**
 * Polls stats as the cf CLI does: stable when any instance is RUNNING (or the
 * process has none); fails when every instance CRASHED or the timeout passes.
 */
export async function waitForStart(ctx: Ctx, appGuid: string, opts: { timeoutMs?: number; intervalMs?: number; onStats?: (s: InstanceStats[]) => void } = {}) {
  const timeoutMs = opts.timeoutMs ?? Number(ctx.env.BERTH_STARTUP_TIMEOUT_MS ?? 300_000);
  const intervalMs = opts.intervalMs ?? 500;
  const proc = await webProcess(ctx, appGuid);
  if (proc.instances === 0) return [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await processStats(ctx, proc.guid);
    opts.onStats?.(stats);
    if (stats.some((s) => s.state === "RUNNING")) return stats;
    if (stats.length > 0 && stats.every((s) => s.state === "CRASHED")) {
      const details = stats.map((s) => s.details).filter(Boolean).join("; ");
      throw new AllInstancesCrashed(`Start unsuccessful: all instances crashed${details ? ` (${details})` : ""}`);
    }
    if (Date.now() > deadline) throw new Error(`Start app timeout after ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
