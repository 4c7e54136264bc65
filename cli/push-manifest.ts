/**
 * @module The manifest `berth push` sends: written from the flags, or read
 * from `-f manifest.yml` with the flags laid over it, as the cf CLI does. Pure.
 * What a manifest means (defaults, routes, validation) is the API's
 * (worker/manifests); here only keys are set, and the names and images the
 * CLI needs afterwards (for packages) are read back.
 */
import { isMap, isSeq, parseDocument, stringify, type Document, type YAMLMap } from "yaml";
import { UsageError } from "./context";

export interface PushFlags {
  dockerImage?: string;
  dockerUsername?: string;
  startCommand?: string;
  instances?: number;
  memory?: string;
  disk?: string;
  healthCheckType?: string;
  timeout?: number;
  endpoint?: string;
  route: boolean;
}

/** An app the manifest pushes: its name and the image its package is made from. */
export interface PushedApp {
  name: string;
  image: string;
  username?: string;
}

/** Manifest keys the flags set (cf's names). */
function flagKeys(f: PushFlags): Record<string, unknown> {
  const keys: Record<string, unknown> = {};
  if (f.startCommand !== undefined) keys.command = f.startCommand;
  if (f.instances !== undefined) keys.instances = f.instances;
  if (f.memory !== undefined) keys.memory = f.memory;
  if (f.disk !== undefined) keys.disk_quota = f.disk;
  if (f.healthCheckType !== undefined) keys["health-check-type"] = f.healthCheckType;
  if (f.endpoint !== undefined) keys["health-check-http-endpoint"] = f.endpoint;
  if (f.timeout !== undefined) keys.timeout = f.timeout;
  return keys;
}

const hasFlagKeys = (f: PushFlags) => Object.keys(flagKeys(f)).length > 0 || f.dockerImage !== undefined || f.dockerUsername !== undefined || !f.route;

/**
 * Sets the route keys as the cf CLI does before applying: `--no-route` drops
 * the app's routes for `no-route: true`; an app naming no route asks for its
 * default one.
 */
function routeKeys(app: YAMLMap, route: boolean): void {
  if (!route) {
    app.delete("routes");
    app.delete("random-route");
    app.set("no-route", true);
  } else if (!app.has("routes") && !app.has("no-route") && !app.has("random-route") && !app.has("default-route")) {
    app.set("default-route", true);
  }
}

/** The one-app manifest of `berth push NAME -o IMAGE [flags]`. */
export function manifestFromFlags(name: string, f: PushFlags): string {
  const app: Record<string, unknown> = { name };
  if (f.dockerImage !== undefined) app.docker = { image: f.dockerImage, ...(f.dockerUsername !== undefined ? { username: f.dockerUsername } : {}) };
  Object.assign(app, flagKeys(f));
  app[f.route ? "default-route" : "no-route"] = true;
  return stringify({ applications: [app] });
}

/**
 * `-f FILE` as sent: only the app `name` when one is given (cf pushes just
 * that one), the flags laid over it. Flags need a single app to apply to.
 * YAML that does not parse is sent as written: the API names the line.
 */
export function manifestFromFile(text: string, name: string | undefined, f: PushFlags): string {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return text;
  const apps = doc.get("applications");
  if (!isSeq(apps)) return text;
  if (name !== undefined) {
    const index = apps.items.findIndex((a) => isMap(a) && a.get("name") === name);
    if (index === -1) throw new UsageError(`Could not find app named '${name}' in manifest`);
    apps.items = [apps.items[index]!];
  }
  const maps = apps.items.filter(isMap);
  if (hasFlagKeys(f) && apps.items.length !== 1) throw new UsageError("Incorrect Usage: flags apply to one app: name it (berth push NAME -f FILE) or keep one app in the manifest");
  for (const app of maps) {
    if (apps.items.length === 1) overlay(doc, app, f);
    routeKeys(app, f.route);
  }
  return doc.toString();
}

function overlay(doc: Document, app: YAMLMap, f: PushFlags): void {
  for (const [k, v] of Object.entries(flagKeys(f))) app.set(k, v);
  if (f.dockerImage !== undefined) app.setIn(["docker", "image"], f.dockerImage);
  if (f.dockerUsername !== undefined) {
    if (!app.has("docker")) app.set("docker", doc.createNode({}));
    app.setIn(["docker", "username"], f.dockerUsername);
  }
}

/** The apps a manifest pushes, each with its Docker image (Berth runs nothing else); none when it does not parse (the API says why). */
export function pushedApps(text: string): PushedApp[] {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return [];
  const apps = (doc.toJS() as { applications?: unknown } | null)?.applications;
  if (!Array.isArray(apps)) return [];
  return apps.map((a: { name?: unknown; docker?: { image?: unknown; username?: unknown } }) => {
    const name = String(a?.name ?? "");
    const image = a?.docker?.image;
    if (typeof image !== "string" || image.length === 0) throw new UsageError(`App '${name}' has no Docker image: give -o IMAGE or docker.image in the manifest`);
    const username = typeof a.docker?.username === "string" ? a.docker.username : undefined;
    return { name, image, ...(username !== undefined ? { username } : {}) };
  });
}
