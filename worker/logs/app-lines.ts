/**
 * @module The platform's lines in an app's logs, written by the Worker into
 * the app's log Durable Object: API lines about changes to the app (after
 * the change committed), STG lines from staging, and the RTR lines routers
 * send. Cells write their APP and CELL lines over their own socket.
 */
import type { Bindings } from "../env";
import type { LogSource, StoredLogLine } from "../../shared/protocol/logs";

/** The app's log store. */
export const appLogStore = (env: Bindings, appGuid: string) => env.LOGS.get(env.LOGS.idFromName(appGuid));

/** A line of the platform's about the app, from source instance 0 (CF's API/0, STG/0). */
export function platformLine(source: Exclude<LogSource, "APP" | "CELL">, text: string, now: number, stream: "stdout" | "stderr" = "stdout"): StoredLogLine {
  return { timestamp: now, instance_index: 0, instance_guid: "", stream, line: text, source };
}

export interface AppLines {
  appGuid: string;
  lines: StoredLogLine[];
}

/** Appends lines to their apps' logs. */
export async function appendAppLines(env: Bindings, batches: readonly AppLines[], now: number = Date.now()): Promise<void> {
  await Promise.all(batches.filter((b) => b.lines.length > 0).map((b) => appLogStore(env, b.appGuid).ingest(b.lines, now)));
}

/**
 * Writes `source` lines into an app's logs as they happen (STG lines while
 * staging runs). A store that cannot be reached costs the lines, never the
 * work they tell of: the failure is logged.
 */
export function lineWriter(env: Bindings, source: Exclude<LogSource, "APP" | "CELL">) {
  return async (appGuid: string, texts: string[], stream: "stdout" | "stderr" = "stdout"): Promise<void> => {
    const now = Date.now();
    await appendAppLines(env, [{ appGuid, lines: texts.map((t) => platformLine(source, t, now, stream)) }], now).catch((err: unknown) => {
      console.error(JSON.stringify({ level: "error", msg: "app log write failed", source, app_guid: appGuid, error: String(err) }));
    });
  };
}
