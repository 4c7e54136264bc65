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
