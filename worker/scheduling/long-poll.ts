/**
 * @module Cells' and routers' version channels (VersionChannel objects): a
 * request handler hands the channel a WebSocket watch, or asks it to hold a
 * long-poll; after a write that moved versions, `notifyChannels` — the only
 * notifier — tells the channels of the sources the write named.
 */
import type { Bindings } from "../env";
import { upgradeRequired } from "../errors";
import { sourceName, type MovedSource, type VersionSource } from "./versions";

const channel = (env: Pick<Bindings, "CHANNELS">, source: VersionSource) => env.CHANNELS.get(env.CHANNELS.idFromName(sourceName(source)));

/** The hold time (wrangler var LONG_POLL_HOLD_MS; at most 50 s, docs/architecture.md § Agent protocol). */
export function holdMs(env: Pick<Bindings, "LONG_POLL_HOLD_MS">): number {
  const ms = Number(env.LONG_POLL_HOLD_MS);
  if (!Number.isFinite(ms) || ms < 0 || ms > 50_000) throw new Error(`LONG_POLL_HOLD_MS must be 0..50000, got ${env.LONG_POLL_HOLD_MS}`);
  return ms;
}

/** Waits until `source` moves away from version `after` (true) or the hold ends (false). */
export async function holdUntilChanged(env: Pick<Bindings, "CHANNELS" | "LONG_POLL_HOLD_MS">, source: VersionSource, after: number): Promise<boolean> {
  return channel(env, source).wait(source, after, holdMs(env));
}

/**
 * Answers every poll held on these sources and tells their watchers (call after the D1 write that moved their
 * versions); a source the write read its version back for carries it, and its channel need not read D1.
 */
export async function notifyChannels(env: Pick<Bindings, "CHANNELS">, sources: MovedSource[]): Promise<void> {
  await Promise.all(sources.map(({ version, ...source }) => channel(env, source).notify(source, version)));
}

/** Hands a WebSocket upgrade (already authorized) to the source's channel, which watches with it. */
export function watchChannel(env: Pick<Bindings, "CHANNELS">, source: VersionSource, request: Request): Promise<Response> {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") throw upgradeRequired();
  const url = `https://channel/watch?source=${encodeURIComponent(sourceName(source))}`;
  return channel(env, source).fetch(new Request(url, request));
}
