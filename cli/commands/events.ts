/** @module events: an app's audit events, newest first, as cf events shows them. */
import type { Command } from "commander";
import { findApp } from "../context";
import type { Action } from "../main";

interface AuditEvent {
  created_at: string;
  type: string;
  actor: { name: string };
}

export function registerEvents(program: Command, action: Action) {
  program
    .command("events <name>")
    .description("Show recent app events")
    .action(action(async (ctx, name: string) => {
      const app = await findApp(ctx, name);
      ctx.out.say(`Getting events for app ${name}...\n`);
      const { resources } = await ctx.api().get<{ resources: AuditEvent[] }>(`/v3/audit_events?target_guids=${app.guid}&order_by=-created_at&per_page=50`);
      ctx.out.table(["time", "event", "actor"], resources.map((e) => [e.created_at, e.type, e.actor.name]));
      ctx.out.data(resources.map((e) => ({ time: e.created_at, event: e.type, actor: e.actor.name })));
    }));
}
