/** @module What every command gets: the saved config, an API client, output, and lookups by name. */
import { Api, ApiError, type ApiOptions } from "./api";
import { loadConfig, saveConfig, type Config } from "./config";
import { makeOut, type Out } from "./output";

export interface Ctx {
  config: Config;
  out: Out;
  env: NodeJS.ProcessEnv;
  /** Where prompts and piped secrets are read from. */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Ends long-running commands (`logs` tails) besides Ctrl-C. */
  signal?: AbortSignal;
  /** The logged-in client. */
  api(): Api;
  /** A client for `target` with this session's options (no token). */
  anonymousApi(target: string, skipTlsValidation?: boolean): Api;
  save(config: Config): Promise<void>;
  /** The targeted space, or a clear error. */
  space(): { guid: string; name: string };
}

export async function makeCtx(opts: {
  json: boolean;
  env?: NodeJS.ProcessEnv;
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  onRequest?: ApiOptions["onRequest"];
  signal?: AbortSignal;
  write?: (s: string) => void;
  /** Where BERTH_TRACE lines go (default stderr). */
  writeErr?: (s: string) => void;
}): Promise<Ctx> {
  const env = opts.env ?? process.env;
  const config = await loadConfig(env);
  // BERTH_TRACE=true: each request on stderr, as CF_TRACE does for cf.
  const writeErr = opts.writeErr ?? ((s: string) => void process.stderr.write(s));
  const trace = env.BERTH_TRACE === "true" ? (line: string) => writeErr(`${line}\n`) : undefined;
  const ctx: Ctx = {
    config,
    out: makeOut(opts.json, opts.write),
    env,
    stdin: opts.stdin ?? process.stdin,
    signal: opts.signal,
    api: () => Api.fromConfig(ctx.config, { onRequest: opts.onRequest, trace }),
    anonymousApi: (target, skipTlsValidation) => new Api(target, undefined, { onRequest: opts.onRequest, trace, skipTlsValidation }),
    async save(next) {
      ctx.config = next;
      await saveConfig(next, env);
    },
    space() {
      if (!ctx.config.space) throw new UsageError("No space targeted. Use 'berth target -s SPACE' to target a space.");
      return ctx.config.space;
    },
  };
  return ctx;
}

/** A user mistake the CLI can explain (exit code 1, no API involved). */
export class UsageError extends Error {}

export interface AppResource {
  guid: string;
  name: string;
  state: string;
  created_at: string;
  updated_at: string;
}

export async function findApp(ctx: Ctx, name: string): Promise<AppResource> {
  const space = ctx.space();
  const q = new URLSearchParams({ names: name, space_guids: space.guid });
  const apps = await ctx.api().all<AppResource>(`/v3/apps?${q}`);
  const app = apps.find((a) => a.name === name);
  if (!app) throw new ApiError(404, "CF-ResourceNotFound", `App '${name}' not found`);
  return app;
}

/** Where apps answer, as GET /v3/info tells (older control planes: http, the scheme's port). */
export interface AppsUrl {
  domain: string;
  scheme: "http" | "https";
  port: number | null;
}

export async function appsUrl(ctx: Ctx): Promise<AppsUrl> {
  const info = await ctx.api().get<{ apps_domain?: string; apps_scheme?: string; apps_port?: number | null }>("/v3/info");
  return { domain: info.apps_domain ?? "apps.localhost", scheme: info.apps_scheme === "https" ? "https" : "http", port: info.apps_port ?? null };
}

/** The URL that reaches a route (`host.domain[/path]`): the scheme, and the port (after the host) unless it is the scheme's own. */
export function routeUrl(route: string, apps: Pick<AppsUrl, "scheme" | "port">): string {
  const own = apps.scheme === "https" ? 443 : 80;
  const slash = route.indexOf("/");
  const [host, path] = slash === -1 ? [route, ""] : [route.slice(0, slash), route.slice(slash)];
  return `${apps.scheme}://${host}${apps.port !== null && apps.port !== own ? `:${apps.port}` : ""}${path}`;
}
