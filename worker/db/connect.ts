/**
 * @module The one way the Worker and its Durable Objects get a Db: one drizzle
 * instance per D1 binding for the isolate's life. Building one walks the whole
 * schema (drizzle's relational config), about 0.8 s of every 40 s of the
 * Worker's CPU in convergence-sim when each request built its own. Under
 * PROFILE the binding is wrapped to count what this request or pass asks of
 * D1 (http/d1-tally.ts), so that Db is its own.
 */
import { drizzle } from "drizzle-orm/d1";
import type { Db } from "../env";
import { tallied, type D1Tally } from "../http/d1-tally";
import * as schema from "./schema";

const dbs = new WeakMap<D1Database, Db>();

export function connect(d1: D1Database, tally?: D1Tally | null): Db {
  if (tally) return drizzle(tallied(d1, tally), { schema });
  let db = dbs.get(d1);
  if (db === undefined) {
    db = drizzle(d1, { schema });
    dbs.set(d1, db);
  }
  return db;
}
