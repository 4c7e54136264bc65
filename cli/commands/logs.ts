/** @module logs NAME [--recent]: recent lines, or a live tail over a WebSocket (cf logs). */
import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import WebSocket from "ws";
import { sourceTypeTag, type StoredLogLine } from "../../shared/protocol/logs";
import { findApp, type Ctx } from "../context";
import type { Action } from "../main";

/** cf's line format: `TIME [SOURCE/INDEX] OUT|ERR text` (SOURCE: APP/PROC/WEB, CELL, RTR, API, STG). */
export function formatLogLine(l: StoredLogLine): string {
  return `${new Date(l.timestamp).toISOString()} [${sourceTypeTag(l.source)}/${l.instance_index}] ${l.stream === "stdout" ? "OUT" : "ERR"} ${l.line}`;
}

/** How one tail connection ended: the user stopped it, the API refused it, or it dropped. */
type TailEnd = { kind: "stopped" } | { kind: "refused"; status: number } | { kind: "lost"; reason: string };

function tailOnce(ctx: Ctx, appGuid: string, signal: AbortSignal, onOpen: () => void): Promise<TailEnd> {
  const url = new URL(`/v3/apps/${appGuid}/logs/tail`, ctx.config.api);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url, {
    headers: { authorization: `Bearer ${ctx.config.token}` },
    ...(ctx.config.skipTlsValidation ? { rejectUnauthorized: false } : {}),
  });
  return new Promise((resolve) => {
    let end: TailEnd | undefined;
    const stop = () => {
      end ??= { kind: "stopped" };
      ws.terminate();
    };
    signal.addEventListener("abort", stop, { once: true });
    ws.once("open", onOpen);
    ws.on("message", (data) => {
      const msg = JSON.parse(String(data)) as { lines: StoredLogLine[] };
      for (const l of msg.lines) {
        ctx.out.say(formatLogLine(l));
        ctx.out.data(l);
      }
    });
    ws.once("unexpected-response", (_req, res) => {
      end ??= { kind: "refused", status: res.statusCode ?? 0 };
      ws.terminate();
    });
    ws.once("error", (e) => (end ??= { kind: "lost", reason: e.message }));
    ws.once("close", (code) => {
      signal.removeEventListener("abort", stop);
      resolve(end ?? (signal.aborted ? { kind: "stopped" } : { kind: "lost", reason: `closed (${code})` }));
    });
  });
}

/** The wait before reconnect attempt `attempt` (0-based): base doubling up to max. */
export function reconnectDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
}

/**
 * Tails until stopped; a dropped stream (control plane restarting, network)
 * is reopened with backoff, and the user told. A refusal (401/403/404: the
 * token or app is gone) ends it with an error: retrying would not help.
 */
export async function tail(ctx: Ctx, appGuid: string, signal: AbortSignal): Promise<void> {
  const baseMs = Number(ctx.env.BERTH_LOGS_RECONNECT_MS ?? 1000);
  const maxMs = Number(ctx.env.BERTH_LOGS_RECONNECT_MAX_MS ?? 30_000);
  let attempt = 0;
  let lost = false;
  for (;;) {
    const end = await tailOnce(ctx, appGuid, signal, () => {
      attempt = 0;
      if (lost) ctx.out.say("Reconnected.");
      lost = false;
    });
    if (end.kind === "stopped") return;
    if (end.kind === "refused" && end.status >= 400 && end.status < 500) throw new Error(`log stream refused: HTTP ${end.status}`);
    const delay = reconnectDelay(attempt++, baseMs, maxMs);
    lost = true;
    ctx.out.say(`Log stream lost (${end.kind === "refused" ? `HTTP ${end.status}` : end.reason}); reconnecting in ${delay / 1000} s...`);
    try {
      await sleep(delay, undefined, { signal });
    } catch {
      return; // stopped while waiting
    }
  }
}

export function registerLogs(program: Command, action: Action) {
  program
    .command("logs <app>")
    .description("Tail or show recent logs for an app")
    .option("--recent", "dump recent logs instead of tailing")
    .action(action(async (ctx, name: string, opts: { recent?: boolean }) => {
      const app = await findApp(ctx, name);
      if (opts.recent) {
        const recent = await ctx.api().get<{ lines: StoredLogLine[]; dropped: number }>(`/v3/apps/${app.guid}/logs`);
        ctx.out.say(`Retrieving logs for app ${name}...\n`);
        for (const l of recent.lines) ctx.out.say(formatLogLine(l));
        if (recent.dropped > 0) ctx.out.say(`(${recent.dropped} lines were dropped by the log rate limit)`);
        ctx.out.data(recent);
        return;
      }
      ctx.out.say(`Retrieving logs for app ${name}...\n`);
      const stop = new AbortController();
      const onSigint = () => stop.abort();
      process.once("SIGINT", onSigint);
      try {
        await tail(ctx, app.guid, ctx.signal ? AbortSignal.any([stop.signal, ctx.signal]) : stop.signal);
      } finally {
        process.off("SIGINT", onSigint);
      }
    }));
}
