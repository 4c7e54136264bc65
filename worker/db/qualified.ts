/**
 * @module A column spelled with its table (`"instances"."app_guid"`). drizzle
 * leaves a one-table select's columns bare, and inside a correlated subquery a
 * bare name binds to the subquery's own table when it has such a column: the
 * outer row's columns there must be spelled so.
 */
import { getTableName, sql, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";

export function qualified(column: SQLiteColumn): SQL {
  return sql`${sql.identifier(getTableName(column.table))}.${sql.identifier(column.name)}`;
}
