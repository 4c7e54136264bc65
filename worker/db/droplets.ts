/** @module Droplets in D1: read by guid and listed, each with its app's space for access checks. */
import { and, asc, count, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../env";
import { type Viewer, visibleTo } from "./roles";
import { apps, droplets } from "./schema";

export type DropletRow = typeof droplets.$inferSelect;

export async function getDroplet(db: Db, guid: string): Promise<{ droplet: DropletRow; spaceGuid: string } | undefined> {
  const [row] = await db.select({ droplet: droplets, spaceGuid: apps.spaceGuid })
    .from(droplets).innerJoin(apps, eq(apps.guid, droplets.appGuid)).where(eq(droplets.guid, guid)).limit(1);
  return row;
}

export interface DropletFilter {
  appGuids?: string[];
  guids?: string[];
  states?: string[];
  packageGuids?: string[];
  viewer: Viewer;
  page: number;
  perPage: number;
}

export async function listDroplets(db: Db, f: DropletFilter): Promise<{ total: number; droplets: DropletRow[] }> {
  const cond = and(
    f.appGuids && inArray(droplets.appGuid, f.appGuids),
    f.guids && inArray(droplets.guid, f.guids),
    f.states && inArray(droplets.state, f.states),
    f.packageGuids && inArray(droplets.packageGuid, f.packageGuids),
    visibleTo(db, f.viewer, apps.spaceGuid),
  );
  const [totals, rows] = await db.batch([
    db.select({ n: count() }).from(droplets).innerJoin(apps, eq(apps.guid, droplets.appGuid)).where(cond),
    db.select({ droplet: droplets }).from(droplets).innerJoin(apps, eq(apps.guid, droplets.appGuid)).where(cond)
      .orderBy(asc(droplets.createdAt), sql`${droplets}.rowid`).limit(f.perPage).offset((f.page - 1) * f.perPage),
  ]);
  return { total: totals[0]?.n ?? 0, droplets: rows.map((r) => r.droplet) };
}
