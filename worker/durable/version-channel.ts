/**
 * @module VersionChannel: one Durable Object per version source ("cell:<guid>"
 * for a cell's desired set, "routes_table" for the routers' table), telling
 * cells and routers when the version moves. `notify(source, version?)`, sent
 * by the one notifier (scheduling/long-poll.ts) after a write that moved the
 * version (with it, when the write read it back), reaches both kinds of listener:
 *
 * - Watches: WebSockets accepted with the Hibernation API, sent the version
 *   on connect and on every notify. Between changes the object hibernates
 *   (pings are answered by an auto-response, without waking it), so an idle
 *   fleet costs no Durable Object duration.
 * - Long-polls (the fallback): `wait(source, after, holdMs)` answers when the
 *   version moves or the hold ends. A poll registers first and then reads the
 *   version from D1 itself, so a change committed between the caller's check
 *   and the registration is never missed, even if its notify came first.
 */
import { DurableObject } from "cloudflare:workers";
import { connect } from "../db/connect";
import type { Bindings } from "../env";
import { answerClose } from "./close-socket";
import { parseSourceName, readVersion, type VersionSource } from "../scheduling/versions";

type Waiter = (changed: boolean) => void;

export class VersionChannel extends DurableObject<Bindings> {
  private readonly waiters = new Set<Waiter>();

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  private read(source: VersionSource): Promise<number | undefined> {
    return readVersion(connect(this.env.DB), source);
  }

  /** A watch (`/watch?source=…`, a WebSocket upgrade the Worker checked and forwarded). */
  override async fetch(request: Request): Promise<Response> {
    const source = parseSourceName(new URL(request.url).searchParams.get("source") ?? "");
    if (!source) return new Response("bad watch request", { status: 400 });
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    // Accepted before the read: a notify meanwhile reaches it too (watchers keep the highest version).
    pair[1].send(JSON.stringify({ version: (await this.read(source)) ?? 0 }));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /** Watchers only listen; their pings never get here (auto-response). */
  override async webSocketMessage(): Promise<void> {}

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    answerClose(ws, code);
  }

  /** `version`: what the write moved the source to, when it read that back; else it is read here. */
  async notify(source: VersionSource, version?: number): Promise<void> {
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const w of waiting) w(true);
    const sockets = this.ctx.getWebSockets();
    if (sockets.length === 0) return;
    // Two writes' notifies may come in either order: watchers keep the highest version they were sent.
    const message = JSON.stringify({ version: version ?? (await this.read(source)) ?? 0 });
    for (const ws of sockets) {
      try {
        ws.send(message);
      } catch {
        ws.close(1011, "send failed");
      }
    }
  }

  /** True when `source` moved away from `after`, false when the hold ended first. */
  wait(source: VersionSource, after: number, holdMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const done: Waiter = (changed) => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(changed);
      };
      const timer = setTimeout(() => done(false), holdMs);
      this.waiters.add(done);
      this.read(source).then(
        (version) => {
          if (version !== after) done(true);
        },
        (err: unknown) => {
          clearTimeout(timer);
          this.waiters.delete(done);
          reject(new Error(`reading the ${source.kind} version`, { cause: err }));
        },
      );
    });
  }
}
