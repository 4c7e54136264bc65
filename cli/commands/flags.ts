/** @module feature-flags, feature-flag, enable-feature-flag, disable-feature-flag. */
import type { Command } from "commander";
import type { Action } from "../main";

interface Flag {
  name: string;
  enabled: boolean;
  custom_error_message: string | null;
}

const state = (f: Flag) => (f.enabled ? "enabled" : "disabled");

export function registerFlags(program: Command, action: Action) {
  program
    .command("feature-flags")
    .description("Retrieve the list of feature flags with their status")
    .action(action(async (ctx) => {
      ctx.out.say("Getting feature flags...\n");
      const flags = await ctx.api().all<Flag>("/v3/feature_flags");
      ctx.out.table(["name", "state"], flags.map((f) => [f.name, state(f)]));
      ctx.out.data(flags);
    }));

  program
    .command("feature-flag <name>")
    .description("Retrieve an individual feature flag with status")
    .action(action(async (ctx, name: string) => {
      const f = await ctx.api().get<Flag>(`/v3/feature_flags/${encodeURIComponent(name)}`);
      ctx.out.say(`Getting info for feature flag ${name}...\n`);
      ctx.out.table(["name", "state"], [[f.name, state(f)]]);
      ctx.out.data(f);
    }));

  for (const enabled of [true, false]) {
    program
      .command(`${enabled ? "enable" : "disable"}-feature-flag <name>`)
      .description(`${enabled ? "Allow" : "Prevent"} use of a feature`)
      .action(action(async (ctx, name: string) => {
        const f = await ctx.api().patch<Flag>(`/v3/feature_flags/${encodeURIComponent(name)}`, { enabled });
        ctx.out.say(`Setting status of ${name} as ${ctx.config.api}...\nOK\n\nFeature ${name} ${state(f)}.`);
        ctx.out.data(f);
      }));
  }
}
