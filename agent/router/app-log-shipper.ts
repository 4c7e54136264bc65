/**
 * @module The apps' RTR lines: one access line per request, in Gorouter's
 * format, shipped into the app's logs on the control plane (CF's router
 * emits the same line to Loggregator for `cf logs`). {@link AppLogShipper.record}
 * is the one way in, for whatever proxies the request (this router's proxy,
 * or another front end whose log lines become {@link AccessRecord}s).
 *
 * The app and instance come from the route table, by the upstream's
 * `address:port`, never from anything the client or the app sent: a request
 * is logged to the app that answered it. A request no instance took (404,
 * 503 with no instance) has no app and no line, as with Gorouter.
 *
 * Lines wait in a bounded queue (lines and bytes) and go in batches every
 * `intervalMs` with the router's credential (shared/protocol/router-logs.ts),
 * or at once when a whole batch is waiting: under load a line lives for
 * milliseconds, not a second, so it dies young in the garbage collector
 * instead of being copied and promoted (with a 1 s wait the daemon's GC
 * threads cost half what its main thread did per request). Sends never
 * overlap. While the control plane is away lines stay queued and only the
 * interval tries again; past the bound new lines are dropped and counted, so
 * an unreachable control plane costs the router a fixed amount of memory.
 */
import type { Logger } from "pino";
import { Gauge, type Registry } from "prom-client";
import { request } from "undici";
import { packLogBatches } from "../../shared/logs/batches";
import { cutLine } from "../../shared/logs/rate-limit";
import { MAX_LOG_BATCH_LINES } from "../../shared/protocol/logs";
import { MAX_ROUTER_LOG_BATCH_BYTES, routerLogAnswerSchema, type RouterLogLine } from "../../shared/protocol/router-logs";
import type { RouteTable } from "../../shared/protocol/route-table";
import type { AccessRecord } from "./access-log";
import type { RouterConfig } from "./config";
import { backendKey } from "./table";

/** The app instance a request went to. */
export interface AppTarget {
  readonly appGuid: string;
  readonly instanceGuid: string;
  readonly index: number;
}

// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[\\"\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex
const ESCAPED = /[\\"\u0000-\u001f\u007f]/g;

/** A quoted field: quotes, backslashes and control characters escaped, so no value can end its field and fake another. */
function quoted(value: string | undefined): string {
  if (value === undefined || value === "") return '"-"';
  // Most values need no escape: a test costs far less than a replace with a callback (a line per request).
  if (!NEEDS_ESCAPE.test(value)) return `"${value}"`;
  return `"${value.replace(ESCAPED, (c) => (c === "\\" || c === '"' ? `\\${c}` : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`))}"`;
}

/** The last whole second startTime formatted, kept: requests within one second share it. */
let second = { epochS: Number.NaN, iso: "" };

/** RFC 3339 with nanoseconds, as Gorouter prints its start time. */
function startTime(epochMs: number): string {
  const epochS = Math.floor(epochMs / 1000);
  if (epochS !== second.epochS) second = { epochS, iso: new Date(epochS * 1000).toISOString().slice(0, 19) }; // 2026-12-07T00:13:13
  const nanos = Math.min(999_999_999, Math.round((epochMs - epochS * 1000) * 1e6));
  return `${second.iso}.${String(nanos).padStart(9, "0")}Z`;
}

/** The line Gorouter writes for a request (its access log format), for the instance `target`. */
export function rtrLine(r: AccessRecord, target: AppTarget, timeOrigin: number): string {
  const seconds = Math.max(0, r.now - r.startedAt) / 1000;
  // One template, no array to join: a line is made per request.
  return (
    `${r.host} - [${startTime(timeOrigin + r.startedAt)}] ${quoted(`${r.method ?? "-"} ${r.url ?? "-"} ${r.protocol ?? "-"}`)} ` +
    `${r.status} ${r.bytesReceived ?? 0} ${r.bytesSent ?? 0} ${quoted(r.referer)} ${quoted(r.userAgent)} ${quoted(r.remoteAddress)} ` +
    `${quoted(r.upstream ?? undefined)} x_forwarded_for:${quoted(r.forwardedFor)} x_forwarded_proto:${quoted(r.forwardedProto)} ` +
    `vcap_request_id:${quoted(r.requestId)} response_time:${seconds.toFixed(6)} app_id:${quoted(target.appGuid)} ` +
    `app_index:${quoted(String(target.index))} instance_id:${quoted(target.instanceGuid)} x_cf_routererror:${quoted(r.error)}`
  );
}

/** upstream `address:port` → the instance there, from a route table. */
export function targetsOf(table: RouteTable): Map<string, AppTarget> {
  const targets = new Map<string, AppTarget>();
  for (const route of table.routes) {
    for (const i of route.instances) targets.set(backendKey(i.address, i.port), { appGuid: i.app_guid, instanceGuid: i.instance_guid, index: i.index });
  }
  return targets;
}

/**
 * What a queued line costs: its text's length (a string's memory, one byte a
 * character for Latin-1, two beyond: no encoding per request) and about as
 * much again at most for the rest of it.
 */
const queuedSize = (l: RouterLogLine) => l.line.length + 256;

/** Lines the control plane refused, from its answer; 0 for an answer it did not mean (the batch was taken). */
function refusedIn(body: string): number {
  try {
    const parsed = routerLogAnswerSchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data.refused : 0;
  } catch {
    return 0;
  }
}

export interface AppLogShipperOptions {
  /** Control plane base URL. */
  readonly apiUrl: string;
  /** The router's credential. */
  readonly token: string;
  readonly intervalMs: number;
  readonly requestTimeoutMs: number;
  /** Bounds of what waits to be sent. */
  readonly maxQueuedLines: number;
  readonly maxQueuedBytes: number;
  readonly log: Logger;
  /** Epoch ms of performance.now()'s zero (AccessRecord times are on that clock). */
  readonly timeOrigin?: number;
}

export type DropReason = "queue_full" | "refused" | "rejected_batch";

export class AppLogShipper {
  private targets = new Map<string, AppTarget>();
  private queue: RouterLogLine[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The sends asked for, one after another. */
  private sends: Promise<void> = Promise.resolve();
  private sendsPending = 0;
  /** The last send could not reach the control plane or was not taken: a full batch waits for the interval. */
  private failing = false;
  private stopped = false;
  /** Lines not shipped, by why: no room while the control plane was away, refused by it, or a batch it would not take. */
  readonly dropped: Record<DropReason, number> = { queue_full: 0, refused: 0, rejected_batch: 0 };
  private readonly timeOrigin: number;

  constructor(private readonly opts: AppLogShipperOptions) {
    this.timeOrigin = opts.timeOrigin ?? performance.timeOrigin;
  }

  /** Takes effect for the next record: instances are found in the newest table. */
  applyTable(table: RouteTable): void {
    this.targets = targetsOf(table);
  }

  /** Lines waiting to be sent. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * One finished request: its RTR line is queued for its app, or dropped
   * (counted) when the queue is full. `timeOrigin` is the epoch ms of the
   * clock the record's times are on (another process's performance.timeOrigin,
   * or 0 for epoch times); this process's by default.
   */
  record(r: AccessRecord, timeOrigin = this.timeOrigin): void {
    if (r.upstream === null) return;
    const target = this.targets.get(r.upstream);
    if (target === undefined) return;
    const text = rtrLine(r, target, timeOrigin);
    const cut = cutLine(text);
    const timestamp = Math.floor(timeOrigin + r.startedAt);
    // One shape per kind of line (no spread): a line is made per request.
    const line: RouterLogLine =
      cut === null
        ? { app_guid: target.appGuid, instance_guid: target.instanceGuid, timestamp, line: text }
        : { app_guid: target.appGuid, instance_guid: target.instanceGuid, timestamp, line: cut, truncated: true };
    const bytes = queuedSize(line);
    if (this.queue.length >= this.opts.maxQueuedLines || this.queuedBytes + bytes > this.opts.maxQueuedBytes) {
      this.drop("queue_full", 1);
      return;
    }
    this.queue.push(line);
    this.queuedBytes += bytes;
    if (this.queuedBytes >= MAX_ROUTER_LOG_BATCH_BYTES && this.sendsPending === 0 && !this.failing) void this.flush();
  }

  start(): this {
    const tick = async () => {
      await this.flush();
      if (!this.stopped) this.timer = setTimeout(tick, this.opts.intervalMs);
    };
    this.timer = setTimeout(tick, this.opts.intervalMs);
    return this;
  }

  /** Stops the timer and sends what is queued, once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.flush();
  }

  /** Sends what is queued once any send under way has ended: two sends never overlap, so no line goes twice. */
  flush(): Promise<void> {
    this.sendsPending++;
    this.sends = this.sends.then(() => this.sendQueued()).finally(() => void this.sendsPending--);
    return this.sends;
  }

  /** What is queued, batch by batch; a batch that cannot be sent stays queued, with everything after it. */
  private async sendQueued(): Promise<void> {
    while (this.queue.length > 0) {
      // Only the first batch is packed: the lines behind it are serialized when their turn comes, once each.
      const [batch] = packLogBatches(this.queue, { maxBytes: MAX_ROUTER_LOG_BATCH_BYTES, maxLines: MAX_LOG_BATCH_LINES });
      if (batch === undefined) return;
      let answer: { status: number; body: string };
      try {
        answer = await this.post(batch.message);
      } catch (err) {
        this.failing = true;
        this.opts.log.warn({ err: (err as Error).message, queued: this.queue.length }, "app log lines not shipped; kept to try again");
        return;
      }
      if (answer.status >= 500 || answer.status === 401 || answer.status === 429) {
        this.failing = true;
        this.opts.log.warn({ status: answer.status, queued: this.queue.length }, "control plane did not take app log lines; kept to try again");
        return;
      }
      this.failing = false;
      this.take(batch.lines.length);
      if (answer.status !== 200) {
        this.drop("rejected_batch", batch.lines.length);
        this.opts.log.warn({ status: answer.status, lines: batch.lines.length, detail: answer.body.slice(0, 300) }, "control plane rejected a batch of app log lines; dropped");
        continue;
      }
      const refused = refusedIn(answer.body);
      if (refused > 0) this.drop("refused", refused);
    }
  }

  private take(n: number): void {
    for (const l of this.queue.splice(0, n)) this.queuedBytes -= queuedSize(l);
  }

  /** Lines dropped before they reached this shipper (a cluster worker's full buffer), counted here. */
  droppedUpstream(n: number): void {
    if (n > 0) this.drop("queue_full", n);
  }

  private drop(reason: DropReason, n: number): void {
    // Logged on the first of each thousand, so a long outage does not flood the router's own log.
    if (this.dropped[reason] % 1000 === 0) this.opts.log.warn({ reason, dropped: this.dropped[reason] + n }, "app log lines dropped");
    this.dropped[reason] += n;
  }

  private async post(body: string): Promise<{ status: number; body: string }> {
    const res = await request(new URL("/v3/routers/logs", this.opts.apiUrl), {
      method: "POST",
      headers: { authorization: `bearer ${this.opts.token}`, "content-type": "application/json" },
      body,
      headersTimeout: this.opts.requestTimeoutMs,
      bodyTimeout: this.opts.requestTimeoutMs,
    });
    return { status: res.statusCode, body: await res.body.text() };
  }
}

/** The daemon's shipper, started, its drops counted in `registry` (Prometheus). */
export function startAppLogShipper(config: RouterConfig, log: Logger, registry: Registry): AppLogShipper {
  const shipper = new AppLogShipper({ apiUrl: config.apiUrl, token: config.token, log, ...config.appLogs });
  new Gauge({
    name: "berth_router_app_log_lines_dropped",
    help: "Access lines (RTR) not shipped to apps' logs, by reason",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      for (const [reason, n] of Object.entries(shipper.dropped)) this.set({ reason }, n);
    },
  });
  return shipper.start();
}
