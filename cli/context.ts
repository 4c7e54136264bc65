/** @module What every command gets: the saved config, an API client, output, and lookups by name. */
import { Api, ApiError } from "./api";
import { loadConfig, saveConfig, type Config } from "./config";
import { makeOut, type Out } from "./output";

export interface Ctx {
  config: Config;
  out: Out;
  env: NodeJS.ProcessEnv;
  api(): Api;
  save(config: Config): Promise<void>;
  /** The targeted space, or a clear error. */
  space(): { guid: string; name: string };
}

export async function makeCtx(opts: { json: boolean; env?: NodeJS.ProcessEnv; fetchImpl?: typeof fetch; write?: (s: string) => void }): Promise<Ctx> {
  const env = opts.env ?? process.env;
  const config = await loadConfig(env);
  const ctx: Ctx = {
    config,
    out: makeOut(opts.json, opts.write),
    env,
    api: () => Api.fromConfig(ctx.config, opts.fetchImpl),
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

export async function appsDomain(ctx: Ctx): Promise<string> {
  const info = await ctx.api().get<{ apps_domain?: string; links?: { apps_domain?: { href?: string } } }>("/v3/info");
  return info.apps_domain ?? "apps.localhost";
}
