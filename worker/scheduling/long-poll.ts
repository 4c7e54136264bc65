/**
 * @module Holding and releasing long-polls through CellChannel objects: the
 * request handler asks the channel to hold, whoever changes the version (the
 * scheduler, a route edit, a report) notifies after its D1 write.
 */
import { z } from "zod";
import type { Bindings } from "../env";
import { sourceName, type VersionSource } from "./versions";

type ChannelEnv = Pick<Bindings, "CELLS" | "LONG_POLL_HOLD_MS">;

const channel = (env: Pick<Bindings, "CELLS">, source: VersionSource) => env.CELLS.get(env.CELLS.idFromName(sourceName(source)));

/** The hold time (wrangler var LONG_POLL_HOLD_MS; DESIGN: at most 50 s). */
export function holdMs(env: Pick<Bindings, "LONG_POLL_HOLD_MS">): number {
  const ms = Number(env.LONG_POLL_HOLD_MS);
  if (!Number.isFinite(ms) || ms < 0 || ms > 50_000) throw new Error(`LONG_POLL_HOLD_MS must be 0..50000, got ${env.LONG_POLL_HOLD_MS}`);
  return ms;
}

const waitAnswer = z.object({ changed: z.boolean() });

/** Waits until `source` moves away from version `after` (true) or the hold ends (false). */
export async function holdUntilChanged(env: ChannelEnv, source: VersionSource, after: number, signal?: AbortSignal): Promise<boolean> {
  const q = new URLSearchParams({ source: sourceName(source), after: String(after), hold: String(holdMs(env)) });
  const res = await channel(env, source).fetch(`https://channel/wait?${q}`, { signal });
  if (!res.ok) throw new Error(`channel ${sourceName(source)} answered ${res.status}: ${await res.text()}`);
  return waitAnswer.parse(await res.json()).changed;
}

/** Answers every poll held on these sources (call after the D1 write that moved their versions). */
export async function notifyChannels(env: Pick<Bindings, "CELLS">, sources: VersionSource[]): Promise<void> {
  await Promise.all(
    sources.map(async (source) => {
      const res = await channel(env, source).fetch("https://channel/notify", { method: "POST" });
      if (!res.ok) throw new Error(`notifying ${sourceName(source)} failed: ${res.status}`);
    }),
  );
}
