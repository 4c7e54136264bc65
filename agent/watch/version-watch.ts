/**
 * @module A WebSocket on one of the control plane's version channels (a cell's
 * desired set, the routers' route table). The channel sends the version on
 * connect and every new one after; between changes its Durable Object
 * hibernates, where a held long-poll keeps it billed as active.
 *
 * Long-polling stays the fallback: `watched()` waits on the socket while it is
 * up and otherwise long-polls as before, while the watch reconnects in the
 * background. Pings go every `pingMs`; the channel answers them without waking
 * (an auto-response), and a socket that misses two answers is dropped.
 */
import WebSocket from "ws";
import { z } from "zod";

export interface VersionWatchOptions {
  /** The channel's HTTP(S) URL, e.g. `http://127.0.0.1:8787/v3/cells/<guid>/desired/watch`. */
  url: URL;
  credential: string;
  pingMs?: number;
  retryMs?: number;
  log?: (msg: string, extra: Record<string, unknown>) => void;
}

const versionMessage = z.object({ version: z.number().int().nonnegative() });

export class VersionWatch {
  private socket: WebSocket | null = null;
  private version: number | null = null;
  private readonly listeners = new Set<() => void>();
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly options: VersionWatchOptions) {}

  start(): this {
    this.connect();
    return this;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.socket?.terminate();
    this.drop();
  }

  /** The channel's newest version while connected, else null. */
  get current(): number | null {
    return this.socket === null ? null : this.version;
  }

  /** Resolves once the version is not `after`, the socket drops, `maxMs` pass, or `signal` aborts. */
  changed(after: number, maxMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const check = () => {
        if (this.current !== after) done();
      };
      const timer = setTimeout(done, maxMs);
      signal?.addEventListener("abort", done, { once: true });
      this.listeners.add(check);
      check();
    });
  }

  private drop(): void {
    this.socket = null;
    this.version = null;
    for (const l of [...this.listeners]) l();
  }

  private connect(): void {
    const { url, credential, pingMs = 20_000, retryMs = 5_000, log } = this.options;
    const ws = new WebSocket(url.href.replace(/^http/, "ws"), { headers: { authorization: `Bearer ${credential}` }, handshakeTimeout: pingMs });
    let answered = true;
    const pinger = setInterval(() => {
      // Still connecting: the handshake timeout bounds that.
      if (ws.readyState !== WebSocket.OPEN) return;
      if (!answered) return ws.terminate();
      answered = false;
      ws.send("ping");
    }, pingMs);
    ws.on("message", (data) => {
      const text = String(data);
      if (text === "pong") {
        answered = true;
        return;
      }
      let parsed;
      try {
        parsed = versionMessage.safeParse(JSON.parse(text));
      } catch {
        return;
      }
      if (!parsed.success) return;
      answered = true;
      // Versions only grow: a connect-time read that lost a race with a notify is older.
      this.version = this.socket === ws && this.version !== null ? Math.max(this.version, parsed.data.version) : parsed.data.version;
      this.socket = ws;
      for (const l of [...this.listeners]) l();
    });
    ws.on("error", (err) => log?.("version watch failed; long-polling until it is back", { url: url.pathname, err: err.message }));
    ws.on("close", () => {
      clearInterval(pinger);
      if (this.socket === ws || this.socket === null) this.drop();
      if (!this.stopped) this.retry = setTimeout(() => this.connect(), retryMs);
    });
  }
}

/**
 * A long-poll `poll(after)` made to wait on the watch while it is connected:
 * no request is held; once the version moves, the thing is fetched without
 * `after`. Unchanged (the wait ended with the same version) answers null, as
 * a 204 does.
 */
export function watched<T extends { version: number }>(
  watch: VersionWatch,
  poll: (after: number | undefined, signal?: AbortSignal) => Promise<T | null>,
  maxWaitMs: number,
): (after: number | undefined, signal?: AbortSignal) => Promise<T | null> {
  return async (after, signal) => {
    if (after === undefined || watch.current === null) return poll(after, signal);
    await watch.changed(after, maxWaitMs, signal);
    if (watch.current === after) return null;
    const got = await poll(undefined, signal);
    return got && got.version === after ? null : got;
  };
}
