/**
 * @module CF app manifests (YAML) into what apply_manifest changes: pure, no I/O.
 * Errors are CC's words: a YAML error is a 400 naming the line, a bad field a
 * 422 "For application 'x': ..." (AppManifestMessage's messages).
 */
import { parseDocument } from "yaml";
import { z } from "zod";
import { badRequest, unprocessable } from "../errors";
import { MAX_HEALTH_CHECK_TIMEOUT, MAX_INSTANCES } from "../routes/processes";
import { envNameProblem } from "../http/env-vars";

export type HealthCheckType = "port" | "process" | "http";

export interface ProcessManifest {
  type: string;
  instances?: number;
  memoryInMb?: number;
  diskInMb?: number;
  command?: string;
  healthCheckType?: HealthCheckType;
  healthCheckEndpoint?: string;
  timeout?: number;
}

export interface AppManifest {
  name: string;
  docker?: { image: string; username?: string };
  env?: Record<string, string>;
  /** Hosts and domains as written (`host.domain[/path]`). */
  routes?: string[];
  noRoute: boolean;
  randomRoute: boolean;
  defaultRoute: boolean;
  /** The `web` process from the app's top level merged with processes[]. */
  processes: ProcessManifest[];
}

const UNITS: Record<string, number> = { B: 1 / (1024 * 1024), K: 1 / 1024, KB: 1 / 1024, M: 1, MB: 1, G: 1024, GB: 1024, T: 1024 * 1024, TB: 1024 * 1024 };

/** "256M", "1G", "512MB" in MiB; a string when it is not one (CC's message). */
export function megabytes(value: unknown, field: string): number | string {
  const m = typeof value === "string" ? /^\s*(\d+)\s*([A-Za-z]+)\s*$/.exec(value) : null;
  const factor = m ? UNITS[m[2]!.toUpperCase()] : undefined;
  if (!m || factor === undefined) return `${field} must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB`;
  const mb = Math.floor(Number(m[1]) * factor);
  if (mb < 1) return `${field} must be greater than 0MB`;
  return mb;
}

const scalar = z.union([z.string(), z.number(), z.boolean()]);

const processKeys = {
  instances: z.unknown().optional(),
  memory: z.unknown().optional(),
  disk_quota: z.unknown().optional(),
  command: z.unknown().optional(),
  "health-check-type": z.unknown().optional(),
  "health-check-http-endpoint": z.unknown().optional(),
  timeout: z.unknown().optional(),
};

// Unknown keys are ignored as CC ignores them; the ones Berth cannot honour are refused below.
const appSchema = z.looseObject({
  name: z.unknown(),
  docker: z.unknown().optional(),
  env: z.unknown().optional(),
  routes: z.unknown().optional(),
  "no-route": z.unknown().optional(),
  "random-route": z.unknown().optional(),
  "default-route": z.unknown().optional(),
  processes: z.unknown().optional(),
  ...processKeys,
});

/** Keys for buildpack apps, which Berth (Docker images only) cannot run. */
const BUILDPACK_KEYS = ["buildpack", "buildpacks", "stack", "path"];

function fieldsOfProcess(raw: Record<string, unknown>, type: string, problems: string[]): ProcessManifest {
  const p: ProcessManifest = { type };
  const label = type === "web" ? "" : `Process "${type}": `;
  if (raw.instances !== undefined) {
    if (!Number.isInteger(raw.instances)) problems.push(`${label}Instances must be an integer`);
    else if ((raw.instances as number) < 0) problems.push(`${label}Instances must be greater than or equal to 0`);
    else if ((raw.instances as number) > MAX_INSTANCES) problems.push(`${label}Instances must be less than or equal to ${MAX_INSTANCES}`);
    else p.instances = raw.instances as number;
  }
  for (const [key, field, set] of [
    ["memory", "Memory", (n: number) => (p.memoryInMb = n)],
    ["disk_quota", "Disk quota", (n: number) => (p.diskInMb = n)],
  ] as const) {
    if (raw[key] === undefined) continue;
    const mb = megabytes(raw[key], field);
    if (typeof mb === "string") problems.push(label + mb);
    else set(mb);
  }
  if (raw.command !== undefined && raw.command !== null) {
    if (typeof raw.command !== "string" || raw.command.length < 1 || raw.command.length > 4096) problems.push(`${label}Command must be between 1 and 4096 characters`);
    else p.command = raw.command;
  }
  const hc = raw["health-check-type"];
  if (hc !== undefined) {
    // "none" is the old name of "process" (CC still takes it).
    const type = hc === "none" ? "process" : hc;
    if (type !== "port" && type !== "process" && type !== "http") problems.push(`${label}Health check type must be "port", "process", or "http"`);
    else p.healthCheckType = type;
  }
  const endpoint = raw["health-check-http-endpoint"];
  if (endpoint !== undefined) {
    if (typeof endpoint !== "string" || !/^\/[^\s]*$/.test(endpoint) || endpoint.length > 255) problems.push(`${label}Health check http endpoint must be a valid URI path`);
    else if ((p.healthCheckType ?? "http") !== "http") problems.push(`${label}Health check type must be "http" to set a health check HTTP endpoint`);
    else p.healthCheckEndpoint = endpoint;
  }
  if (raw.timeout !== undefined) {
    if (!Number.isInteger(raw.timeout) || (raw.timeout as number) < 1) problems.push(`${label}Timeout must be greater than or equal to 1`);
    else if ((raw.timeout as number) > MAX_HEALTH_CHECK_TIMEOUT) problems.push(`${label}Timeout must be less than or equal to ${MAX_HEALTH_CHECK_TIMEOUT}`);
    else p.timeout = raw.timeout as number;
  }
  return p;
}

const bool = (raw: unknown, field: string, problems: string[]): boolean => {
  if (raw === undefined || raw === null) return false;
  if (typeof raw !== "boolean") {
    problems.push(`${field} must be a boolean`);
    return false;
  }
  return raw;
};

function parseApp(raw: unknown, index: number): AppManifest {
  const shaped = appSchema.safeParse(raw);
  if (!shaped.success || typeof shaped.data.name !== "string" || shaped.data.name.length === 0) {
    throw unprocessable(`For application at index ${index}: Name must not be empty`);
  }
  const a = shaped.data;
  const name = a.name as string;
  const problems: string[] = [];
  for (const key of BUILDPACK_KEYS) if (a[key] !== undefined) problems.push(`${key[0]!.toUpperCase()}${key.slice(1)} is not supported: Berth runs Docker images only`);

  let docker: AppManifest["docker"];
  if (a.docker !== undefined) {
    const d = z.strictObject({ image: z.string().min(1), username: z.string().min(1).optional() }).safeParse(a.docker);
    if (!d.success) problems.push("Docker must have an image (and optionally a username)");
    else docker = d.data;
  }

  let env: Record<string, string> | undefined;
  if (a.env !== undefined && a.env !== null) {
    const e = z.record(z.string(), scalar.nullable()).safeParse(a.env);
    if (!e.success) problems.push("Env must be an object of keys and values");
    else {
      env = {};
      for (const [k, v] of Object.entries(e.data)) {
        const problem = envNameProblem(k);
        if (problem) problems.push(`Env ${problem}`);
        // CC stores YAML scalars as strings (true -> "true").
        env[k] = v === null ? "" : String(v);
      }
    }
  }

  let routes: string[] | undefined;
  if (a.routes !== undefined) {
    const r = z.array(z.strictObject({ route: z.string().min(1), protocol: z.string().optional() })).safeParse(a.routes);
    if (!r.success) problems.push("Routes must be a list of route objects");
    else routes = r.data.map((x) => x.route);
  }
  const noRoute = bool(a["no-route"], "No-route", problems);
  const randomRoute = bool(a["random-route"], "Random-route", problems);
  const defaultRoute = bool(a["default-route"], "Default-route", problems);
  if (noRoute && routes?.length) problems.push("Cannot use the combination of properties: no-route, routes");
  if (randomRoute && routes?.length) problems.push("Cannot use the combination of properties: random-route, routes");

  const web = fieldsOfProcess(a, "web", problems);
  const processes: ProcessManifest[] = [web];
  if (a.processes !== undefined) {
    if (!Array.isArray(a.processes)) problems.push("Processes must be an array of process configurations");
    else {
      const seen = new Set<string>();
      for (const p of a.processes as unknown[]) {
        const type = (p as { type?: unknown } | null)?.type;
        if (typeof type !== "string" || type.length === 0) {
          problems.push("Processes must have a type");
          continue;
        }
        if (seen.has(type)) problems.push(`Process "${type}" may only be present once`);
        seen.add(type);
        const fields = fieldsOfProcess(p as Record<string, unknown>, type, problems);
        if (type === "web") Object.assign(web, Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)));
        else processes.push(fields);
      }
    }
  }
  if (problems.length > 0) throw unprocessable(`For application '${name}': ${problems.join(", ")}`);
  return { name, docker, env, routes, noRoute, randomRoute, defaultRoute, processes };
}

/** The manifest's `applications` as written (a YAML error is CC's 400 naming the line). */
export function readManifestApps(text: string): unknown[] {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw badRequest(`invalid YAML${line ? ` at line ${line}` : ""}: ${e.message.split("\n")[0]}`);
  }
  const root: unknown = doc.toJS({ maxAliasCount: 100 });
  const apps = (root as { applications?: unknown } | null)?.applications;
  if (!Array.isArray(apps) || apps.length === 0) throw unprocessable("Applications must be an array of at least one application");
  return apps;
}

/** Parses and validates a manifest; throws the CfError CC answers with. */
export function parseManifest(text: string): AppManifest[] {
  const parsed = readManifestApps(text).map(parseApp);
  const names = parsed.map((a) => a.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw unprocessable(`Application '${dup}' appears more than once in the manifest`);
  return parsed;
}
