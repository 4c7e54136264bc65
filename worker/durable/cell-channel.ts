/**
 * @module CellChannel: one Durable Object per long-polled thing ("cell:<guid>"
 * for a cell's desired set, "routes_table" for the routers' table). It holds
 * `GET /wait?source=…&after=N&hold=MS` until the version moves or the hold ends,
 * and `POST /notify` (sent by the scheduler or a route edit after their D1 write)
 * answers every held poll at once.
 *
 * A poll registers first and then reads the version from D1 itself, so a change
 * committed between the caller's check and the registration is never missed,
 * even if its notify arrived before the poll did.
 */
import { DurableObject } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import type { Bindings } from "../env";
import * as schema from "../db/schema";
import { parseSourceName, readVersion } from "../scheduling/versions";

type Waiter = (changed: boolean) => void;

export class CellChannel extends DurableObject<Bindings> {
  private readonly waiters = new Set<Waiter>();

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname === "/notify") {
      this.release();
      return new Response(null, { status: 204 });
    }
    if (request.method === "GET" && url.pathname === "/wait") {
      const source = parseSourceName(url.searchParams.get("source") ?? "");
      const after = Number(url.searchParams.get("after"));
      const hold = Number(url.searchParams.get("hold"));
      if (!source || !Number.isSafeInteger(after) || !Number.isFinite(hold) || hold < 0) {
        return new Response("bad wait request", { status: 400 });
      }
      const changed = await this.wait(source, after, hold, request.signal);
      return Response.json({ changed });
    }
    return new Response("not found", { status: 404 });
  }

  private release(): void {
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const w of waiting) w(true);
  }

  private wait(source: NonNullable<ReturnType<typeof parseSourceName>>, after: number, holdMs: number, signal: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const done: Waiter = (changed) => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(changed);
      };
      const timer = setTimeout(() => done(false), holdMs);
      this.waiters.add(done);
      // The poller went away (cut connection): stop holding for it.
      signal.addEventListener("abort", () => done(false), { once: true });
      readVersion(drizzle(this.env.DB, { schema }), source).then(
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
