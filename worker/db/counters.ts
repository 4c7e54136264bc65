/**
 * @module Monotonic counters in D1 (the `counters` table). `routes_table` is the
 * version routers long-poll on: every change to routes or destinations bumps it
 * in the same batch as the change.
 */
import { eq, sql } from "drizzle-orm";
import type { Db } from "../env";
import { counters } from "./schema";

export const ROUTES_TABLE_COUNTER = "routes_table";

/** An upsert adding 1 to a counter (creating it at 1), for `db.batch`. */
export function bumpCounter(db: Db, name: string) {
  return db.insert(counters).values({ name, value: 1 })
    .onConflictDoUpdate({ target: counters.name, set: { value: sql`${counters.value} + 1` } });
}

export const bumpRouteTable = (db: Db) => bumpCounter(db, ROUTES_TABLE_COUNTER);

/** A counter's value; 0 before its first bump. */
export async function readCounter(db: Db, name: string): Promise<number> {
  const [row] = await db.select({ value: counters.value }).from(counters).where(eq(counters.name, name)).limit(1);
  return row?.value ?? 0;
}
