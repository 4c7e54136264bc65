/** @module One page of a table plus the total count, read together in one D1 batch. */
import { count, type SQL } from "drizzle-orm";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Db } from "../env";

export interface Page {
  page: number;
  perPage: number;
}

/** Rows of `table` matching `where`, in `orderBy` order (end it with a unique column for stable pages). */
export async function selectPage<T extends SQLiteTable>(
  db: Db,
  table: T,
  where: SQL | undefined,
  orderBy: (SQLiteColumn | SQL)[],
  page: Page,
): Promise<{ total: number; rows: T["$inferSelect"][] }> {
  // drizzle cannot infer a select over a generic table; the casts only restore T's row type.
  const [totals, rows] = await db.batch([
    db.select({ n: count() }).from(table as SQLiteTable).where(where),
    db.select().from(table as SQLiteTable).where(where).orderBy(...orderBy).limit(page.perPage).offset((page.page - 1) * page.perPage),
  ]);
  return { total: totals[0]?.n ?? 0, rows: rows as T["$inferSelect"][] };
}
