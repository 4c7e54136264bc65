/** @module api, login, logout, target. */
import type { Command } from "commander";
import { Api } from "../api";
import { UsageError } from "../context";
import type { Action } from "../main";

export function registerSession(program: Command, action: Action) {
  program
    .command("api [url]")
    .description("Set or view the target API URL")
    .action(action(async (ctx, url?: string) => {
      if (!url) {
        ctx.out.say(ctx.config.api ? `API endpoint: ${ctx.config.api}` : "No API endpoint set. Use 'berth api URL' to set one.");
        ctx.out.data({ api: ctx.config.api ?? null });
        return;
      }
      const target = new URL(url).toString().replace(/\/$/, "");
      const info = await new Api(target, undefined).get<{ name?: string; version?: string | number }>("/v3/info");
      await ctx.save({ api: target });
      ctx.out.say(`Setting API endpoint to ${target}...\nOK\n\nAPI endpoint:   ${target}\nAPI version:    ${info.version ?? "unknown"}`);
      ctx.out.data({ api: target, info });
    }));

  program
    .command("login")
    .description("Log in with a bearer token (or BERTH_TOKEN)")
    .option("-a, --api <url>", "API endpoint")
    .option("-t, --token <token>", "token (default: BERTH_TOKEN)")
    .option("-s, --space <space>", "space to target")
    .action(action(async (ctx, opts: { api?: string; token?: string; space?: string }) => {
      const api = opts.api?.replace(/\/$/, "") ?? ctx.config.api;
      if (!api) throw new UsageError("No API endpoint set. Use 'berth login -a URL' or 'berth api URL'.");
      const token = opts.token ?? ctx.env.BERTH_TOKEN;
      if (!token) throw new UsageError("No token given. Use 'berth login -t TOKEN' or set BERTH_TOKEN.");
      const client = new Api(api, token);
      // Listing spaces proves the token works and finds the space to target.
      const spaces = await client.all<{ guid: string; name: string }>("/v3/spaces");
      let space: { guid: string; name: string } | undefined;
      if (opts.space) {
        space = spaces.find((s) => s.name === opts.space);
        if (!space) throw new UsageError(`Space '${opts.space}' not found.`);
      } else if (spaces.length === 1) {
        space = spaces[0];
      }
      await ctx.save({ api, token, space });
      ctx.out.say(`API endpoint: ${api}\nAuthenticating...\nOK\n`);
      if (space) ctx.out.say(`Targeted space ${space.name}.`);
      ctx.out.data({ api, space: space ?? null });
    }));

  program
    .command("logout")
    .description("Forget the saved token")
    .action(action(async (ctx) => {
      await ctx.save({ api: ctx.config.api });
      ctx.out.say("Logging out...\nOK");
      ctx.out.data({ logged_out: true });
    }));

  program
    .command("target")
    .description("Set or view the targeted space")
    .option("-s, --space <space>", "space to target")
    .action(action(async (ctx, opts: { space?: string }) => {
      if (opts.space) {
        const spaces = await ctx.api().all<{ guid: string; name: string }>(`/v3/spaces?names=${encodeURIComponent(opts.space)}`);
        const space = spaces.find((s) => s.name === opts.space);
        if (!space) throw new UsageError(`Space '${opts.space}' not found.`);
        await ctx.save({ ...ctx.config, space });
      }
      ctx.out.say(`API endpoint:   ${ctx.config.api ?? "(none)"}\nspace:          ${ctx.config.space?.name ?? "No space targeted, use 'berth target -s SPACE'"}`);
      ctx.out.data({ api: ctx.config.api ?? null, space: ctx.config.space ?? null });
    }));
}
