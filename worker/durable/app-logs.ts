/**
 * @module One Durable Object per app holding its recent log lines (a bounded
 * table in the object's SQLite) and its live tails. Cells connect a WebSocket
 * tagged "cell" and send batches; tails connect with the tag "tail". Sockets use
 * the hibernation API so an idle app's object costs nothing.
 *
 * Sending to a tail is fire-and-forget (workerd buffers per socket), so a slow
 * tail never holds a cell up; a tail whose send throws is closed.
 */
import { DurableObject } from "cloudflare:workers";
import { admit, type RateWindow } from "../../shared/logs/rate-limit";
import { LOG_SOURCES, logBatchSchema, MAX_LOG_BATCH_BYTES, type LogSource, type StoredLogLine } from "../../shared/protocol/logs";
import type { Bindings } from "../env";
import { answerClose } from "./close-socket";

/** Lines kept per app and window (the app's, the router's, the platform's); CF's log-cache keeps a bounded ring per source too. */
const DEFAULT_KEEP = 1000;
const DEFAULT_LINES_PER_SECOND = 1000;

export interface RecentLogs {
  lines: StoredLogLine[];
  /** Lines dropped by the rate limit since the object started. */
  dropped: number;
  truncated: number;
}

/** The store's row, as SQL gives it back. */
type Row = {
  seq: number;
  timestamp: number;
  instance_index: number;
  instance_guid: string;
  stream: string;
  line: string;
  truncated: number;
  source: string;
};

const COLUMNS = "seq, timestamp, instance_index, instance_guid, stream, line, truncated, source";

function toLine(r: Row): StoredLogLine {
  return {
    timestamp: r.timestamp,
    instance_index: r.instance_index,
    instance_guid: r.instance_guid,
    stream: r.stream as StoredLogLine["stream"],
    line: r.line,
    ...(r.truncated ? { truncated: true } : {}),
    ...(r.source !== "APP" ? { source: r.source as LogSource } : {}),
  };
}

const WINDOWS = ["app", "rtr", "platform"] as const;
type Window = (typeof WINDOWS)[number];
/** The one statement of which source goes with which window; the rest derive from it. */
const WINDOW_OF: Record<LogSource, Window> = { APP: "app", RTR: "rtr", CELL: "platform", API: "platform", STG: "platform" };
const windowOf = (l: StoredLogLine): Window => WINDOW_OF[l.source ?? "APP"];
const sourcesOf = (w: Window): LogSource[] => LOG_SOURCES.filter((s) => WINDOW_OF[s] === w);

export class AppLogs extends DurableObject<Bindings> {
  /**
   * The app's own output, the router's access lines and the platform's lines
   * about the app are limited apart, as CF's log rate limit is the app's: a
   * flood of requests (RTR lines, which anyone can cause) cannot silence the
   * app or its CELL, API and STG lines, nor a chatty app those.
   */
  private windows: Record<Window, RateWindow> = { app: { start: 0, admitted: 0 }, rtr: { start: 0, admitted: 0 }, platform: { start: 0, admitted: 0 } };

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS lines (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, timestamp INTEGER NOT NULL, instance_index INTEGER NOT NULL,
      instance_guid TEXT NOT NULL, stream TEXT NOT NULL, line TEXT NOT NULL, truncated INTEGER NOT NULL,
      source TEXT NOT NULL DEFAULT 'APP')`);
    // Objects made before lines had sources get the column (their lines were all the app's).
    const columns = ctx.storage.sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('lines')").toArray();
    if (!columns.some((c) => c.name === "source")) ctx.storage.sql.exec("ALTER TABLE lines ADD COLUMN source TEXT NOT NULL DEFAULT 'APP'");
    ctx.storage.sql.exec("CREATE INDEX IF NOT EXISTS lines_by_source ON lines (source, seq)");
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS counts (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
  }

  private get keep(): number {
    return Number(this.env.LOG_KEEP_LINES ?? DEFAULT_KEEP);
  }

  private get linesPerSecond(): number {
    return Number(this.env.LOG_LINES_PER_SECOND ?? DEFAULT_LINES_PER_SECOND);
  }

  override async fetch(request: Request): Promise<Response> {
    // Only WebSocket upgrades come by fetch; recent lines are the `recent` RPC.
    const url = new URL(request.url);
    const tag = url.pathname === "/ingest" ? "cell" : url.pathname === "/tail" ? "tail" : null;
    if (!tag) return new Response("not found", { status: 404 });
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket", { status: 426 });
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], [tag]);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (!this.ctx.getTags(ws).includes("cell")) return; // tails only listen
    const text = typeof message === "string" ? message : new TextDecoder().decode(message);
    // Refused with an answer, not by parsing: the cell drops the batch instead of sending it again.
    const size = typeof message === "string" ? new TextEncoder().encode(message).byteLength : message.byteLength;
    if (size > MAX_LOG_BATCH_BYTES) {
      ws.send(JSON.stringify({ error: `log batch refused: it is ${size} bytes, more than the ${MAX_LOG_BATCH_BYTES} a batch may be` }));
      return;
    }
    let batch;
    try {
      batch = logBatchSchema.parse(JSON.parse(text));
    } catch (e) {
      ws.send(JSON.stringify({ error: `invalid log batch: ${e instanceof Error ? e.message.slice(0, 300) : "unparseable"}` }));
      return;
    }
    this.ingest(batch.lines, Date.now());
    ws.send(JSON.stringify({ ack: batch.lines.length }));
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    answerClose(ws, code);
  }

  /**
   * Stores what the rate limits admit, trims to the bound, fans out to tails.
   * The one way lines enter: cells' sockets, and the Worker (by RPC) for the
   * API, STG and router lines it has checked.
   */
  ingest(lines: readonly StoredLogLine[], now: number): void {
    const results = WINDOWS.map((w) => {
      const a = admit(this.windows[w], lines.filter((l) => windowOf(l) === w), now, this.linesPerSecond);
      this.windows[w] = a.window;
      return a;
    });
    const admitted = results.flatMap((a) => a.admitted).sort((a, b) => a.timestamp - b.timestamp);
    const dropped = results.reduce((n, a) => n + a.dropped, 0);
    const truncated = results.reduce((n, a) => n + a.truncated, 0);
    const sql = this.ctx.storage.sql;
    for (const l of admitted) {
      sql.exec(
        "INSERT INTO lines (timestamp, instance_index, instance_guid, stream, line, truncated, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
        l.timestamp, l.instance_index, l.instance_guid, l.stream, l.line, l.truncated ? 1 : 0, l.source ?? "APP",
      );
    }
    // Each window keeps its own newest lines, so a flood of one kind (requests, say) cannot erase another's.
    for (const w of new Set(admitted.map(windowOf))) {
      const sources = sourcesOf(w);
      sql.exec(
        `DELETE FROM lines WHERE source IN (${sources.map(() => "?").join(", ")}) AND seq <
          (SELECT seq FROM lines WHERE source IN (${sources.map(() => "?").join(", ")}) ORDER BY seq DESC LIMIT 1 OFFSET ?)`,
        ...sources, ...sources, this.keep - 1,
      );
    }
    for (const [name, n] of [["dropped", dropped], ["truncated", truncated]] as const) {
      if (n > 0) sql.exec("INSERT INTO counts (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", name, n);
    }
    if (admitted.length === 0) return;
    const message = JSON.stringify({ lines: admitted, dropped });
    for (const tail of this.ctx.getWebSockets("tail")) {
      try {
        tail.send(message);
      } catch {
        tail.close(1011, "send failed");
      }
    }
  }

  /**
   * Log Cache's read: lines at or after `start` (and before `end`), oldest
   * first or newest first, at most `limit`. A line's time in nanoseconds is its
   * millisecond timestamp with its sequence number's low six digits below it,
   * so times are unique and a poller asking from its last time + 1 sees every
   * line once. Times are decimal strings: nanoseconds pass 2^53.
   */
  read(q: { start: bigint; end: bigint | null; limit: number; descending: boolean }): { ns: string; line: StoredLogLine }[] {
    const split = (ns: bigint) => [Number(ns / 1_000_000n), Number(ns % 1_000_000n)] as const;
    const [startMs, startRem] = split(q.start);
    const [endMs, endRem] = q.end === null ? [Number.MAX_SAFE_INTEGER, 0] : split(q.end);
    const rows = this.ctx.storage.sql
      .exec<Row>(
        `SELECT ${COLUMNS} FROM lines
          WHERE (timestamp > ? OR (timestamp = ? AND seq % 1000000 >= ?))
            AND (timestamp < ? OR (timestamp = ? AND seq % 1000000 < ?))
          ORDER BY timestamp ${q.descending ? "DESC" : "ASC"}, seq ${q.descending ? "DESC" : "ASC"} LIMIT ?`,
        startMs, startMs, startRem, endMs, endMs, endRem, q.limit,
      )
      .toArray();
    return rows.map((r) => ({
      ns: (BigInt(r.timestamp) * 1_000_000n + BigInt(r.seq % 1_000_000)).toString(),
      line: toLine(r),
    }));
  }

  recent(limit: number): RecentLogs {
    const sql = this.ctx.storage.sql;
    const rows = sql
      .exec<Row>(
        `SELECT ${COLUMNS} FROM (SELECT * FROM lines ORDER BY seq DESC LIMIT ?) ORDER BY seq`,
        Math.max(1, Math.min(limit, this.keep * WINDOWS.length)),
      )
      .toArray();
    const count = (name: string) => sql.exec<{ value: number }>("SELECT value FROM counts WHERE name = ?", name).toArray()[0]?.value ?? 0;
    return {
      lines: rows.map(toLine),
      dropped: count("dropped"),
      truncated: count("truncated"),
    };
  }
}
