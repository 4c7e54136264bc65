/** @module env, set-env, unset-env (changes reach running instances on restart, as in CF). */
import type { Command } from "commander";
import { findApp } from "../context";
import type { Action } from "../main";

export function registerEnv(program: Command, action: Action) {
  program
    .command("env <app>")
    .description("Show the user-provided environment variables of an app")
    .action(action(async (ctx, name: string) => {
      const app = await findApp(ctx, name);
      const { var: vars } = await ctx.api().get<{ var: Record<string, string> }>(`/v3/apps/${app.guid}/environment_variables`);
      ctx.out.say(`Getting env variables for app ${name}...\n\nUser-Provided:`);
      for (const [k, v] of Object.entries(vars).sort(([a], [b]) => a.localeCompare(b))) ctx.out.say(`${k}: ${v}`);
      ctx.out.data(vars);
    }));

  program
    .command("set-env <app> <name> <value>")
    .description("Set an env variable for an app")
    .action(action(async (ctx, appName: string, name: string, value: string) => {
      const app = await findApp(ctx, appName);
      const res = await ctx.api().patch(`/v3/apps/${app.guid}/environment_variables`, { var: { [name]: value } });
      ctx.out.say(`Setting env variable ${name} for app ${appName}...\nOK\nTIP: Use 'berth restart ${appName}' to ensure your env variable changes take effect`);
      ctx.out.data(res);
    }));

  program
    .command("unset-env <app> <name>")
    .description("Remove an env variable from an app")
    .action(action(async (ctx, appName: string, name: string) => {
      const app = await findApp(ctx, appName);
      const res = await ctx.api().patch(`/v3/apps/${app.guid}/environment_variables`, { var: { [name]: null } });
      ctx.out.say(`Removing env variable ${name} from app ${appName}...\nOK\nTIP: Use 'berth restart ${appName}' to ensure your env variable changes take effect`);
      ctx.out.data(res);
    }));
}
