/**
 * @module Ships every instance's stdout/stderr lines to its app's log Durable
 * Object over one WebSocket per app. Cursors advance (and are saved) only
 * after the control plane acknowledges a batch, so an agent that is offline or
 * restarts catches up from the files on disk (at-least-once). Batches are
 * capped in lines and bytes (shared/logs/batches.ts); a batch the control
 * plane refuses is dropped and logged, never sent again.
 *
 * The cell's own lines about an instance (CELL: creating its container,
 * healthy, exit status, stopping) go the same way, on the app's socket: they
 * wait in memory (a bounded number per instance) until a pass ships them,
 * from before the instance's files exist until its last flush.
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import WebSocket from "ws";
import { packLogBatches, type LogBatch } from "../../shared/logs/batches";
import type { LogLine } from "../../shared/protocol/logs";
import { readSince, type Cursor } from "./tail";

export interface ShippedInstance {
  instanceGuid: string;
  appGuid: string;
  index: number;
  /** Directory holding stdout.log and stderr.log (and their rotations). */
  logDir: string;
}

export interface ShipperOptions {
  apiUrl: string;
  cellGuid: string;
  credential: string;
  stateDir: string;
  intervalMs: number;
  ackTimeoutMs: number;
  log: Logger;
  now?: () => number;
}

const STREAMS = ["stdout", "stderr"] as const;
type Cursors = Partial<Record<(typeof STREAMS)[number], Cursor>>;

/** The control plane answered a batch with an error: sending it again would get the same answer. */
class LogBatchRefused extends Error {}

/** The control plane refused the app's socket (4xx): the cell may not write that app's logs now. */
class LogSocketRefused extends Error {}

/** CELL lines kept per instance while they cannot be shipped; older ones go first. */
export const MAX_PENDING_CELL_LINES = 100;

/** Whose logs a CELL line goes to. */
export type CellLineTarget = Pick<ShippedInstance, "instanceGuid" | "appGuid" | "index">;

/** One app's socket; sends are serialized, each waits for its ack. */
class AppSocket {
  private ws: WebSocket | null = null;
  private pending: { resolve: () => void; reject: (e: Error) => void } | null = null;

  constructor(
    private readonly url: string,
    private readonly credential: string,
    private readonly ackTimeoutMs: number,
  ) {}

  private connect(): Promise<WebSocket> {
    if (this.ws?.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    this.ws?.terminate();
    const ws = new WebSocket(this.url, { headers: { authorization: `Bearer ${this.credential}` }, handshakeTimeout: this.ackTimeoutMs });
    this.ws = ws;
    ws.on("message", (data) => {
      const msg = JSON.parse(String(data)) as { ack?: number; error?: string };
      const p = this.pending;
      this.pending = null;
      if (msg.error) p?.reject(new LogBatchRefused(msg.error));
      else p?.resolve();
    });
    const fail = (e: Error) => {
      this.pending?.reject(e);
      this.pending = null;
    };
    // 1009: the message was over the platform's size limit, which no resend changes.
    ws.on("close", (code) => fail(code === 1009 ? new LogBatchRefused("log batch over the control plane's message size limit") : new Error("log socket closed")));
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(ws));
      ws.once("error", (e) => {
        fail(e);
        reject(e);
      });
      ws.once("unexpected-response", (_req, res) => {
        const msg = `log socket refused: HTTP ${res.statusCode}`;
        reject(res.statusCode !== undefined && res.statusCode >= 400 && res.statusCode < 500 ? new LogSocketRefused(msg) : new Error(msg));
      });
    });
  }

  /** One packed batch (packLogBatches), resolved when the control plane acknowledges it. */
  async send(batch: LogBatch<LogLine>): Promise<void> {
    const ws = await this.connect();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = null;
        ws.terminate();
        reject(new Error("no ack for a log batch"));
      }, this.ackTimeoutMs);
      this.pending = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      ws.send(batch.message);
    });
  }

  close(): void {
    this.ws?.close(1000);
    this.ws = null;
  }
}

export class LogShipper {
  private readonly instances = new Map<string, ShippedInstance>();
  private readonly pending = new Map<string, { target: CellLineTarget; lines: LogLine[] }>();
  /** CELL lines dropped: over the per-instance bound, or refused by the control plane. */
  droppedCellLines = 0;
  private readonly sockets = new Map<string, AppSocket>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: ShipperOptions) {
    this.now = opts.now ?? Date.now;
  }

  private cursorFile(guid: string): string {
    return join(this.opts.stateDir, "log-cursors", `${guid}.json`);
  }

  private async cursors(guid: string): Promise<Cursors> {
    try {
      return JSON.parse(await readFile(this.cursorFile(guid), "utf8")) as Cursors;
    } catch {
      return {};
    }
  }

  private async saveCursors(guid: string, c: Cursors): Promise<void> {
    await mkdir(join(this.opts.stateDir, "log-cursors"), { recursive: true });
    const file = this.cursorFile(guid);
    await writeFile(`${file}.tmp`, JSON.stringify(c));
    await rename(`${file}.tmp`, file);
  }

  track(instance: ShippedInstance): void {
    this.instances.set(instance.instanceGuid, instance);
  }

  /** Queues one of the cell's own lines about an instance (CELL/<index>), shipped with the next pass. */
  cellLine(target: CellLineTarget, text: string): void {
    let p = this.pending.get(target.instanceGuid);
    if (!p) this.pending.set(target.instanceGuid, (p = { target, lines: [] }));
    if (p.lines.length >= MAX_PENDING_CELL_LINES) {
      p.lines.shift();
      this.droppedCellLines++;
    }
    p.lines.push({ timestamp: this.now(), instance_index: target.index, instance_guid: target.instanceGuid, stream: "stdout", line: text, source: "CELL" });
  }

  /**
   * Ships what is left of an instance's lines, then forgets it. The app's
   * socket closes with its last instance on this cell: a socket is authorized
   * when it opens, so one left open would outlive the cell's right to write
   * into that app's logs.
   */
  async untrack(guid: string): Promise<void> {
    const inst = this.instances.get(guid);
    if (!inst) return;
    await this.shipPending(guid).catch((e) => this.opts.log.warn({ instance: guid, err: (e as Error).message }, "final cell line flush failed"));
    await this.shipInstance(inst).catch((e) => this.opts.log.warn({ instance: guid, err: (e as Error).message }, "final log flush failed"));
    this.instances.delete(guid);
    this.pending.delete(guid);
    await rm(this.cursorFile(guid), { force: true });
    if (![...this.instances.values()].some((i) => i.appGuid === inst.appGuid)) {
      this.sockets.get(inst.appGuid)?.close();
      this.sockets.delete(inst.appGuid);
    }
  }

  start(): void {
    const tick = async () => {
      this.running = this.shipAll();
      await this.running;
      this.timer = setTimeout(tick, this.opts.intervalMs);
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
  }

  /** One pass over every instance (and CELL lines of instances not tracked yet); an app whose socket fails waits for the next pass. */
  async shipAll(): Promise<void> {
    for (const guid of [...this.pending.keys()]) {
      try {
        await this.shipPending(guid);
      } catch (e) {
        this.opts.log.warn({ instance: guid, err: (e as Error).message }, "cell line shipping failed; lines wait");
      }
    }
    for (const inst of [...this.instances.values()]) {
      try {
        await this.shipInstance(inst);
      } catch (e) {
        this.opts.log.warn({ app: inst.appGuid, err: (e as Error).message }, "log shipping failed; lines stay on disk");
      }
    }
  }

  /** Ships an instance's waiting CELL lines; they wait on when the control plane is away, and are dropped when it refuses them. */
  private async shipPending(guid: string): Promise<void> {
    const p = this.pending.get(guid);
    if (!p || p.lines.length === 0) return;
    const lines = p.lines.splice(0);
    try {
      for (const batch of packLogBatches(lines)) await this.socketFor(p.target.appGuid).send(batch);
    } catch (e) {
      if (!(e instanceof LogBatchRefused || e instanceof LogSocketRefused)) {
        const kept = lines.slice(Math.max(0, lines.length + p.lines.length - MAX_PENDING_CELL_LINES));
        this.droppedCellLines += lines.length - kept.length;
        p.lines.unshift(...kept);
        throw e;
      }
      this.droppedCellLines += lines.length;
      this.opts.log.warn({ instance: guid, lines: lines.length, err: e.message }, "cell lines refused by the control plane; dropped");
    }
    if (!this.instances.has(guid) && p.lines.length === 0) this.pending.delete(guid);
  }

  private socketFor(appGuid: string): AppSocket {
    let s = this.sockets.get(appGuid);
    if (!s) {
      const url = new URL(`/v3/cells/${this.opts.cellGuid}/apps/${appGuid}/logs`, this.opts.apiUrl);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      s = new AppSocket(url.toString(), this.opts.credential, this.opts.ackTimeoutMs);
      this.sockets.set(appGuid, s);
    }
    return s;
  }

  private async shipInstance(inst: ShippedInstance): Promise<void> {
    const cursors = await this.cursors(inst.instanceGuid);
    const next: Cursors = { ...cursors };
    const lines: LogLine[] = [];
    for (const stream of STREAMS) {
      const got = await readSince(inst.logDir, `${stream}.log`, cursors[stream] ?? null);
      const timestamp = this.now();
      for (const line of got.lines) lines.push({ timestamp, instance_index: inst.index, instance_guid: inst.instanceGuid, stream, line });
      if (got.cursor) next[stream] = got.cursor;
    }
    if (lines.length === 0) return;
    const socket = this.socketFor(inst.appGuid);
    for (const batch of packLogBatches(lines)) {
      try {
        await socket.send(batch);
      } catch (e) {
        if (!(e instanceof LogBatchRefused)) throw e;
        this.opts.log.warn({ app: inst.appGuid, instance: inst.instanceGuid, lines: batch.lines.length, err: e.message }, "log batch refused by the control plane; dropped");
      }
    }
    await this.saveCursors(inst.instanceGuid, next);
  }
}
