/**
 * @module The scheduler: one Durable Object ("global") owns every convergence
 * pass, so two passes never interleave (D1 has no interactive transactions: two
 * concurrent passes could place one index twice).
 *
 * `POST /wake` runs a pass and answers with what it did; wakes that arrive while
 * a pass runs share the one queued after it (it reads D1 after their change).
 * The alarm runs a pass too, and every pass sets the alarm to the next moment
 * something becomes due (a heartbeat expiry, a backoff end, an unplaced retry).
 */
import { DurableObject } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import type { Bindings } from "../env";
import * as schema from "../db/schema";
import type { ConvergenceConfig } from "../../shared/convergence/config";
import { converge } from "../../shared/convergence/converge";
import { nextDueAt } from "../../shared/convergence/next-due";
import { readSnapshot } from "../scheduling/snapshot";
import { applyPlan, type PassOutcome } from "../scheduling/apply-plan";
import { convergenceConfig } from "../scheduling/config";
import { notifyChannels } from "../scheduling/long-poll";
import { parseSourceName, registryAccessVersionQuery, sourceName, type VersionSource } from "../scheduling/versions";
import { ROUTES_TABLE_COUNTER } from "../db/counters";
import { eq } from "drizzle-orm";

/** What a pass did, and the alarm it set (ms since the epoch, or null). */
export type PassReport = PassOutcome & { next_due_at: number | null };

/** Storage key of the versions held long-polls were last told about. */
const NOTIFIED = "notified_versions";

export class Scheduler extends DurableObject<Bindings> {
  private running: Promise<PassReport> | null = null;
  private queued: Promise<PassReport> | null = null;

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname === "/wake") {
      try {
        return Response.json(await this.wake());
      } catch (err) {
        // The waker (a request handler) must not fail because a pass did; the alarm retries.
        console.error(JSON.stringify({ level: "error", msg: "convergence pass failed", error: String(err), stack: (err as Error).stack, cause: String((err as Error).cause ?? "") }));
        return Response.json({ error: "convergence pass failed" }, { status: 500 });
      }
    }
    return new Response("not found", { status: 404 });
  }

  override async alarm(): Promise<void> {
    await this.wake();
  }

  /** Runs a pass now, or joins the one queued behind the running pass. */
  wake(): Promise<PassReport> {
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    const after = this.running.then(
      () => undefined,
      () => undefined,
    );
    this.queued = after.then(() => {
      this.queued = null;
      return this.start();
    });
    return this.queued;
  }

  private start(): Promise<PassReport> {
    const pass = this.pass().finally(() => {
      if (this.running === pass) this.running = null;
    });
    this.running = pass;
    return pass;
  }

  /**
   * Every long-poll source whose version moved since the last pass told its
   * channel: this pass's own writes, and those of request handlers that changed
   * desired state and woke the scheduler (an app delete, a route edit, a
   * registry access edit — its version is part of every cell's set).
   */
  private async movedSources(db: ReturnType<typeof drizzle<typeof schema>>): Promise<VersionSource[]> {
    const [cellRows, access, routes] = await db.batch([
      db.select({ guid: schema.cells.guid, version: schema.cells.desiredVersion }).from(schema.cells),
      registryAccessVersionQuery(db),
      db.select({ value: schema.counters.value }).from(schema.counters).where(eq(schema.counters.name, ROUTES_TABLE_COUNTER)),
    ]);
    const accessVersion = access[0]?.version ?? 0;
    const current: Record<string, number> = Object.fromEntries(cellRows.map((c) => [sourceName({ kind: "cell", cellGuid: c.guid }), c.version + accessVersion]));
    current[sourceName({ kind: "routes_table" })] = routes[0]?.value ?? 0;
    const last = (await this.ctx.storage.get<Record<string, number>>(NOTIFIED)) ?? {};
    await this.ctx.storage.put(NOTIFIED, current);
    return Object.entries(current)
      .filter(([name, v]) => last[name] !== v)
      .map(([name]) => parseSourceName(name)!)
      .filter(Boolean);
  }

  private async pass(): Promise<PassReport> {
    const config = convergenceConfig(this.env);
    try {
      return await this.converge(config);
    } catch (err) {
      await this.ctx.storage.setAlarm(Date.now() + config.unplacedRetryMs);
      throw err;
    }
  }

  private async converge(config: ConvergenceConfig): Promise<PassReport> {
    const db = drizzle(this.env.DB, { schema });
    const now = Date.now();
    const snap = await readSnapshot(db);
    const plan = converge(snap.desired, snap.actual, snap.cells, now, config);
    const outcome = await applyPlan(db, snap, plan, now, config);

    await notifyChannels(this.env, await this.movedSources(db));

    const due = [nextDueAt(snap.actual, snap.cells, now, config), outcome.unplaced.length > 0 ? now + config.unplacedRetryMs : null]
      .filter((t): t is number => t !== null);
    const next = due.length > 0 ? Math.min(...due) : null;
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(next);
    return { ...outcome, next_due_at: next };
  }
}
