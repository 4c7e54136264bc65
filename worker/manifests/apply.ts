/**
 * @module Applies one parsed manifest app to a space, as CC's AppApplyManifest
 * does: find or create the app, scale and edit its web process, merge env,
 * then routes (listed ones mapped, else a default or random route when the app
 * has none, or every mapping removed for no-route). Each step goes through the
 * same db writes the single-resource endpoints use; the caller wakes the
 * scheduler and the routers with what this returns.
 */
import type { ApiLineEvent } from "../logs/api-lines";
import { type App, createApp, listApps, mergeEnvironmentVariables } from "../db/apps";
import type { Job } from "../db/jobs";
import { auditEvent } from "../db/audit";
import { requireFeatureEnabled } from "../db/feature-flags";
import { getProcessByType, scaleProcess, updateProcess } from "../db/processes";
import { addDestinations, createRoute, listRoutes, removeDestination, type Route, routeUrl } from "../db/routes";
import type { UserPrincipal } from "../auth/scope";
import type { Db } from "../env";
import { CfError, unprocessable } from "../errors";
import { applyHealthCheckChange } from "../routes/processes";
import { DNS_LABEL } from "../routes/routes";
import { routePathProblem } from "../../shared/route-path";
import type { AppManifest } from "./parse";
import type { Committed } from "../http/after-commit";
import { isDeploying, SCALE_WHILE_DEPLOYING } from "../deployments/repo";

/** The default route's host from an app name: lower-case, other characters as '-' (the cf CLI's rule). */
export function hostFromName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63).replace(/-+$/, "");
}

const ADJECTIVES = ["brave", "calm", "eager", "fair", "happy", "jolly", "kind", "lively", "proud", "quiet", "shy", "swift", "wise", "zany"];
const NOUNS = ["badger", "cheetah", "dingo", "eland", "ferret", "gecko", "hyena", "ibis", "jackal", "koala", "lemur", "marmot", "numbat", "otter"];

/** CF's random route host: `name-adjective-noun-nn`; `random` is a parameter so tests choose it. */
export function randomHost(name: string, random: () => number = Math.random): string {
  const pick = (list: string[]) => list[Math.floor(random() * list.length)]!;
  const suffix = `-${pick(ADJECTIVES)}-${pick(NOUNS)}-${Math.floor(random() * 100)}`;
  return `${hostFromName(name).slice(0, 63 - suffix.length)}${suffix}`.replace(/^-/, "");
}

export interface RouteAddress {
  host: string;
  /** "" for none. */
  path: string;
}

/** `host.domain[/path]` split against the one apps domain; a string says why it cannot be a route here. */
export function splitRoute(route: string, appsDomain: string): RouteAddress | string {
  const url = route.replace(/^https?:\/\//i, "");
  const slash = url.indexOf("/");
  // Host names are case-insensitive, paths are kept as written (CC's rule).
  const name = (slash === -1 ? url : url.slice(0, slash)).toLowerCase();
  const path = slash === -1 ? "" : url.slice(slash);
  if (name.includes(":")) return `The route '${route}' has a port: Berth routes HTTP hosts only`;
  if (!name.endsWith(`.${appsDomain}`)) return `The route '${route}' did not match any existing domains.`;
  const host = name.slice(0, -(appsDomain.length + 1));
  if (!DNS_LABEL.test(host)) return `The route '${route}' is not a properly formed URL`;
  const pathProblem = routePathProblem(path);
  if (pathProblem) return pathProblem;
  return { host, path };
}

export interface Applied {
  app: App;
  /** Whether any route changed (routers must be told). */
  routesChanged: boolean;
  /** What the app's API lines tell (its creation, the manifest applied). */
  appEvents: ApiLineEvent[];
}

export async function applyAppManifest(db: Db, spaceGuid: string, m: AppManifest, principal: UserPrincipal, appsDomain: string): Promise<Applied> {
  const fail = (detail: string) => unprocessable(`For application '${m.name}': ${detail}`);
  const other = m.processes.find((p) => p.type !== "web");
  if (other) throw fail(`Process "${other.type}": Berth runs web processes only`);
  // Validate routes before any write, so a bad route changes nothing.
  const listed: RouteAddress[] = [];
  for (const r of m.routes ?? []) {
    const split = splitRoute(r, appsDomain);
    if (typeof split === "string") throw fail(split);
    listed.push(split);
  }

  const appEvents: ApiLineEvent[] = [];
  let app = (await listApps(db, { names: [m.name], spaceGuids: [spaceGuid], viewer: principal, orderBy: "created_at", page: 1, perPage: 1 })).apps[0];
  if (!app) {
    await requireFeatureEnabled(db, "diego_docker");
    const created = await createApp(db, { name: m.name, spaceGuid, environmentVariables: {} }, principal);
    if (!created) throw fail(`App with the name '${m.name}' already exists.`);
    app = created;
    appEvents.push({ type: "audit.app.create", appGuid: app.guid });
  }

  const web = m.processes[0]!;
  let proc = await getProcessByType(db, app.guid, "web");
  if (proc && (web.instances !== undefined || web.memoryInMb !== undefined || web.diskInMb !== undefined)) {
    if (await isDeploying(db, app.guid)) throw fail(SCALE_WHILE_DEPLOYING);
    proc = await scaleProcess(db, proc, { instances: web.instances, memoryInMb: web.memoryInMb, diskInMb: web.diskInMb },
      { instances: web.instances, memory_in_mb: web.memoryInMb, disk_in_mb: web.diskInMb }, principal);
  }
  if (proc && (web.command !== undefined || web.healthCheckType !== undefined || web.healthCheckEndpoint !== undefined || web.timeout !== undefined)) {
    const healthCheck = applyHealthCheckChange(proc.healthCheck, {
      type: web.healthCheckType,
      data: { endpoint: web.healthCheckEndpoint, timeout: web.timeout },
    });
    if (typeof healthCheck === "string") throw fail(healthCheck);
    await updateProcess(db, proc, { command: web.command, healthCheck }, { command: web.command, health_check: { type: healthCheck.type } }, principal);
  }

  if (m.env && Object.keys(m.env).length > 0) {
    const merged = await mergeEnvironmentVariables(db, app, m.env, principal);
    if (merged === "too_large") throw fail("Environment variables exceed the size limit");
  }

  const current = (await listRoutes(db, { appGuids: [app.guid], viewer: principal, page: 1, perPage: 5000 })).routes;
  let routesChanged = false;
  if (m.noRoute) {
    for (const route of current) {
      for (const d of route.destinations.filter((d) => d.appGuid === app.guid)) {
        routesChanged = (await removeDestination(db, route, d.guid, { actor: principal, manifestTriggered: true })) || routesChanged;
      }
    }
  } else {
    const wanted: RouteAddress[] = listed.length > 0 ? listed
      : current.length > 0 ? []
      : m.randomRoute ? [{ host: randomHost(m.name), path: "" }]
      : m.defaultRoute ? [{ host: hostFromName(m.name), path: "" }]
      : [];
    for (const address of wanted) {
      if (!DNS_LABEL.test(address.host)) throw fail(`Host '${address.host}' made from the app name is not a DNS label: give a route`);
      await mapRoute(db, app, address, appsDomain, principal, fail);
      routesChanged = true;
    }
  }
  await auditEvent(db, {
    type: "audit.app.apply_manifest", actor: principal, target: { guid: app.guid, type: "app", name: app.name }, spaceGuid,
    // Env values may be secrets: only their names are recorded (as for env var updates).
    data: { request: { manifest: { ...m, env: m.env && Object.fromEntries(Object.keys(m.env).map((k) => [k, "[PRIVATE DATA HIDDEN]"])) } } },
  });
  appEvents.push({ type: "audit.app.apply_manifest", appGuid: app.guid });
  return { app, routesChanged, appEvents };
}

async function mapRoute(db: Db, app: App, { host, path }: RouteAddress, domain: string, principal: UserPrincipal, fail: (d: string) => Error): Promise<void> {
  const url = routeUrl({ host, domain, path });
  let route = (await listRoutes(db, { hosts: [host], paths: [path], viewer: principal, page: 1, perPage: 1 })).routes[0];
  if (!route) {
    const created = await createRoute(db, { host, domain, path, spaceGuid: app.spaceGuid }, principal);
    // Taken on the domain, or its host held, by a space the user cannot see.
    if (typeof created === "string") throw fail(`The route '${url}' is already in use.`);
    route = created;
  } else if (route.spaceGuid !== app.spaceGuid) {
    throw fail(`The route '${url}' is already in use.`);
  }
  if (!route.destinations.some((d) => d.appGuid === app.guid)) {
    await addDestinations(db, route, [{ app, processType: "web", port: null }], { actor: principal, manifestTriggered: true });
  }
}

export interface ManifestOutcome {
  /** CC's error of the app that failed (the job's `errors`); empty when every app applied. */
  errors: Job["errors"];
  /** What routers and the scheduler must be told. */
  committed: Committed;
}

/** Applies each app in turn; CC stops at the first app that fails, and the job carries its error. */
export async function applyManifest(db: Db, spaceGuid: string, manifest: AppManifest[], principal: UserPrincipal, appsDomain: string): Promise<ManifestOutcome> {
  const appGuids: string[] = [];
  const appEvents: ApiLineEvent[] = [];
  let routesChanged = false;
  let errors: Job["errors"] = [];
  for (const m of manifest) {
    try {
      const applied = await applyAppManifest(db, spaceGuid, m, principal, appsDomain);
      appGuids.push(applied.app.guid);
      appEvents.push(...applied.appEvents);
      routesChanged ||= applied.routesChanged;
    } catch (err) {
      if (!(err instanceof CfError)) throw err;
      errors = err.toJSON().errors;
      break;
    }
  }
  return {
    errors,
    committed: {
      sources: routesChanged ? [{ kind: "routes_table" }] : [],
      wake: appGuids.length > 0 ? { apps: appGuids } : undefined,
      appEvents,
    },
  };
}
