/** @module logs NAME [--recent]: recent lines, or a live tail over a WebSocket (cf logs). */
import type { Command } from "commander";
import WebSocket from "ws";
import type { LogLine } from "../../shared/protocol/logs";
import { findApp, type Ctx } from "../context";
import type { Action } from "../main";

/** cf's line format: `TIME [APP/PROC/WEB/INDEX] OUT|ERR text`. */
export function formatLogLine(l: LogLine): string {
  return `${new Date(l.timestamp).toISOString()} [APP/PROC/WEB/${l.instance_index}] ${l.stream === "stdout" ? "OUT" : "ERR"} ${l.line}`;
}

function tail(ctx: Ctx, appGuid: string, signal?: AbortSignal): Promise<void> {
  const url = new URL(`/v3/apps/${appGuid}/logs/tail`, ctx.config.api);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${ctx.config.token}` } });
  return new Promise((resolve, reject) => {
    signal?.addEventListener("abort", () => ws.close(1000), { once: true });
    ws.on("message", (data) => {
      const msg = JSON.parse(String(data)) as { lines: LogLine[] };
      for (const l of msg.lines) {
        ctx.out.say(formatLogLine(l));
        ctx.out.data(l);
      }
    });
    ws.once("unexpected-response", (_req, res) => reject(new Error(`log stream refused: HTTP ${res.statusCode}`)));
    ws.once("error", reject);
    ws.once("close", () => resolve());
  });
}

export function registerLogs(program: Command, action: Action) {
  program
    .command("logs <app>")
    .description("Tail or show recent logs for an app")
    .option("--recent", "dump recent logs instead of tailing")
    .action(action(async (ctx, name: string, opts: { recent?: boolean }) => {
      const app = await findApp(ctx, name);
      if (opts.recent) {
        const recent = await ctx.api().get<{ lines: LogLine[]; dropped: number }>(`/v3/apps/${app.guid}/logs`);
        ctx.out.say(`Retrieving logs for app ${name}...\n`);
        for (const l of recent.lines) ctx.out.say(formatLogLine(l));
        if (recent.dropped > 0) ctx.out.say(`(${recent.dropped} lines were dropped by the log rate limit)`);
        ctx.out.data(recent);
        return;
      }
      ctx.out.say(`Retrieving logs for app ${name}...\n`);
      const stop = new AbortController();
      process.once("SIGINT", () => stop.abort());
      await tail(ctx, app.guid, stop.signal);
    }));
}
