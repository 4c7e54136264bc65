/** @module api, login, logout, target. */
import type { Command } from "commander";
import { read } from "read";
import { Api } from "../api";
import { UsageError, type Ctx } from "../context";
import type { Action } from "../main";
import { orgByName, spaceByName } from "./orgs";

/** The API URL `berth api` saves: https:// when no scheme is given (cf's rule), no trailing slash. */
export function apiTarget(url: string): { target: string; assumedHttps: boolean } {
  const assumedHttps = !/^[a-z][a-z0-9+.-]*:\/\//i.test(url);
  let parsed: URL;
  try {
    parsed = new URL(assumedHttps ? `https://${url}` : url);
  } catch {
    throw new UsageError(`Invalid API endpoint '${url}': give a URL (https://api.example.com) or host[:port]`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new UsageError(`Invalid API endpoint '${url}': the scheme must be http or https`);
  return { target: parsed.toString().replace(/\/$/, ""), assumedHttps };
}

/**
 * The token, out of argv and shell history: a masked prompt in a terminal,
 * else the first line of stdin (`berth login < token-file`, a password manager's pipe).
 */
async function readToken(ctx: Ctx): Promise<string> {
  let token: string;
  if (ctx.stdin.isTTY) {
    token = await read({ prompt: "Token: ", silent: true, replace: "*", input: ctx.stdin, output: process.stderr });
  } else {
    let text = "";
    for await (const chunk of ctx.stdin) text += chunk.toString();
    token = text.split("\n")[0] ?? "";
  }
  token = token.trim();
  if (!token) throw new UsageError("No token given: type it at the prompt, pipe it on stdin (berth login < FILE) or set BERTH_TOKEN.");
  return token;
}

export function registerSession(program: Command, action: Action) {
  program
    .command("api [url]")
    .description("Set or view the target API URL (https:// when no scheme is given, as cf)")
    .option("--skip-ssl-validation", "do not verify the endpoint's TLS certificate")
    .action(action(async (ctx, url: string | undefined, opts: { skipSslValidation?: boolean }) => {
      if (!url) {
        ctx.out.say(ctx.config.api ? `API endpoint: ${ctx.config.api}` : "No API endpoint set. Use 'berth api URL' to set one.");
        ctx.out.data({ api: ctx.config.api ?? null });
        return;
      }
      const { target, assumedHttps } = apiTarget(url);
      if (assumedHttps) ctx.out.say(`No scheme given: assuming ${target}, as cf does (give http://${url} for a plain-HTTP endpoint).`);
      const skipTlsValidation = opts.skipSslValidation === true;
      ctx.out.say(`Setting API endpoint to ${target}...`);
      const info = await ctx.anonymousApi(target, skipTlsValidation).get<{ name?: string; version?: string | number }>("/v3/info");
      await ctx.save({ api: target, ...(skipTlsValidation ? { skipTlsValidation } : {}) });
      ctx.out.say(`OK\n\nAPI endpoint:   ${target}${skipTlsValidation ? " (TLS certificate not verified)" : ""}\nAPI version:    ${info.version ?? "unknown"}`);
      ctx.out.data({ api: target, skip_ssl_validation: skipTlsValidation, info });
    }));

  program
    .command("login")
    .description("Log in with a bearer token: prompted for in a terminal, read from stdin when piped (or BERTH_TOKEN)")
    .option("-a, --api <url>", "API endpoint")
    .option("-t, --token <token>", "token (visible in shell history and ps: prefer the prompt, stdin or BERTH_TOKEN)")
    .option("-s, --space <space>", "space to target")
    .action(action(async (ctx, opts: { api?: string; token?: string; space?: string }) => {
      const given = opts.api ? apiTarget(opts.api) : undefined;
      if (given?.assumedHttps) ctx.out.say(`No scheme given: assuming ${given.target}, as cf does.`);
      const api = given?.target ?? ctx.config.api;
      if (!api) throw new UsageError("No API endpoint set. Use 'berth login -a URL' or 'berth api URL'.");
      const skipTlsValidation = opts.api ? undefined : ctx.config.skipTlsValidation;
      const token = opts.token ?? (ctx.env.BERTH_TOKEN || (await readToken(ctx)));
      const client = new Api(api, token, { skipTlsValidation });
      // Listing spaces proves the token works and finds the space to target.
      const spaces = await client.all<{ guid: string; name: string }>("/v3/spaces");
      let space: { guid: string; name: string } | undefined;
      if (opts.space) {
        space = spaces.find((s) => s.name === opts.space);
        if (!space) throw new UsageError(`Space '${opts.space}' not found.`);
      } else if (spaces.length === 1) {
        space = spaces[0];
      }
      await ctx.save({ api, token, space, ...(skipTlsValidation ? { skipTlsValidation } : {}) });
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
    .description("Set or view the targeted organization and space")
    .option("-o, --org <org>", "organization to target (forgets the space unless -s is given too)")
    .option("-s, --space <space>", "space to target, in the targeted organization")
    .action(action(async (ctx, opts: { org?: string; space?: string }) => {
      if (opts.org) {
        const org = await orgByName(ctx, opts.org);
        // As cf: a new organization forgets the space, unless the organization has just one.
        const only = opts.space ? [] : await ctx.api().all<{ guid: string; name: string }>(`/v3/spaces?organization_guids=${org.guid}`);
        const { space: _, ...rest } = ctx.config;
        await ctx.save({ ...rest, org, ...(only.length === 1 ? { space: only[0] } : {}) });
      }
      if (opts.space) {
        const space = await spaceByName(ctx, opts.space, ctx.config.org);
        await ctx.save({ ...ctx.config, space });
      }
      ctx.out.say(`API endpoint:   ${ctx.config.api ?? "(none)"}
org:            ${ctx.config.org?.name ?? "No org targeted, use 'berth target -o ORG'"}
space:          ${ctx.config.space?.name ?? "No space targeted, use 'berth target -s SPACE'"}`);
      ctx.out.data({ api: ctx.config.api ?? null, org: ctx.config.org ?? null, space: ctx.config.space ?? null });
    }));
}
