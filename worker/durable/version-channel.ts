/**
 * @module VersionChannel: one Durable Object per version source ("cell:<guid>"
 * for a cell's desired set, "routes_table" for the routers' table) holding the
 * long-polls on it. `wait(source, after, holdMs)` (typed RPC) answers when the
 * version moves or the hold ends; `notify()`, sent by the one notifier
 * (scheduling/long-poll.ts) after a write that moved the version, answers
 * every held poll at once.
 *
 * A poll registers first and then reads the version from D1 itself, so a change
 * committed between the caller's check and the registration is never missed,
 * even if its notify arrived before the poll did.
 */
import { DurableObject } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import type { Bindings } from "../env";
import * as schema from "../db/schema";
import { readVersion, type VersionSource } from "../scheduling/versions";

type Waiter = (changed: boolean) => void;

export class VersionChannel extends DurableObject<Bindings> {
  private readonly waiters = new Set<Waiter>();

  notify(): void {
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const w of waiting) w(true);
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
