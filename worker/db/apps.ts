/**
 * @module Apps in D1. An app and its `web` process are written in one batch;
 * env vars are merged by SQLite's json_patch in one statement (RFC 7396: null
 * deletes), so parallel PATCHes of distinct keys all survive without a lock.
 */
import { and, asc, desc, eq, inArray, sql } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../env";
import { newGuid, isoNow } from "../http/ids";
import { type AuditEventInput, auditEvent, auditEventIfChanged } from "./audit";
import { apps, builds, cells, droplets, instances, packages, processes, routeDestinations } from "./schema";
import { bumpRouteTable } from "./counters";
import { bumpCellSetsWhere, type VersionSource } from "../scheduling/versions";
import { webProcessInsert } from "./processes";
import type { Listing } from "./listing";
import { selectPage } from "./paging";
import { visibleTo } from "./roles";

export type AppState = "STARTED" | "STOPPED";

export interface App {
  guid: string;
  name: string;
  spaceGuid: string;
  state: AppState;
  lifecycleType: "docker";
  currentDropletGuid: string | null;
  environmentVariables: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

/** Largest merged env var object kept (bytes of JSON); a PATCH that would pass it is refused. */
export const MAX_ENV_JSON_BYTES = 128 * 1024;

const envSchema = z.record(z.string(), z.string());

/** Parses the stored env JSON; the column is only ever written from validated objects. */
export const parseEnv = (text: string): Record<string, string> => envSchema.parse(JSON.parse(text));

function toApp(row: typeof apps.$inferSelect): App {
  return {
    guid: row.guid,
    name: row.name,
    spaceGuid: row.spaceGuid,
    state: row.state,
    lifecycleType: row.lifecycleType,
    currentDropletGuid: row.currentDropletGuid,
    environmentVariables: parseEnv(row.environmentVariables),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export async function getApp(db: Db, guid: string): Promise<App | undefined> {
  const [row] = await db.select().from(apps).where(eq(apps.guid, guid)).limit(1);
  return row && toApp(row);
}

const ORDER_COLUMNS = { created_at: apps.createdAt, updated_at: apps.updatedAt, name: apps.name };
type OrderKey = keyof typeof ORDER_COLUMNS;
/** CC's order_by: a column, descending with a leading "-". */
export type AppOrder = OrderKey | `-${OrderKey}`;

export interface AppFilter extends Listing {
  names?: string[];
  spaceGuids?: string[];
  guids?: string[];
  orderBy: AppOrder;
}

export async function listApps(db: Db, f: AppFilter): Promise<{ total: number; apps: App[] }> {
  const cond = and(
    f.names && inArray(apps.name, f.names),
    f.spaceGuids && inArray(apps.spaceGuid, f.spaceGuids),
    f.guids && inArray(apps.guid, f.guids),
    visibleTo(db, f.viewer, apps.spaceGuid),
  );
  const descending = f.orderBy.startsWith("-");
  const column = ORDER_COLUMNS[descending ? (f.orderBy.slice(1) as OrderKey) : (f.orderBy as OrderKey)];
  const dir = descending ? desc : asc;
  // Timestamps are to the second: rowid keeps creation order within one.
  const { total, rows } = await selectPage(db, apps, cond, [dir(column), descending ? sql`rowid desc` : sql`rowid`], f);
  return { total, apps: rows.map(toApp) };
}

export interface NewApp {
  name: string;
  spaceGuid: string;
  environmentVariables: Record<string, string>;
}

/**
 * Inserts the app, its `web` process (same guid, CF's AppCreate) and the audit
 * event in one batch. Returns null when the space already has an app of that name.
 */
export async function createApp(db: Db, input: NewApp, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<App | null> {
  const guid = newGuid();
  const ts = isoNow(now);
  const [insert] = await db.batch([
    // The unique (space, name) index makes a duplicate a no-op rather than an error.
    db.insert(apps).values({
      guid, name: input.name, spaceGuid: input.spaceGuid, state: "STOPPED", lifecycleType: "docker",
      environmentVariables: JSON.stringify(input.environmentVariables), createdAt: ts, updatedAt: ts,
    }).onConflictDoNothing(),
    webProcessInsert(db, guid, now),
    auditEventIfChanged(db, {
      type: "audit.app.create", actor, target: { guid, type: "app", name: input.name }, spaceGuid: input.spaceGuid,
      data: { request: { name: input.name, lifecycle: { type: "docker", data: {} } } }, now,
    }),
  ]);
  if (insert.meta.changes !== 1) return null;
  return (await getApp(db, guid)) ?? null;
}

/** Renames an app; "taken" when another app of the space has the name. */
export async function renameApp(db: Db, app: App, name: string, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<"ok" | "taken" | "gone"> {
  if (name === app.name) return "ok";
  const nameFree = sql`not exists (select 1 from ${apps} a2 where a2.space_guid = ${app.spaceGuid} and a2.name = ${name})`;
  let changes: number;
  try {
    const [update] = await db.batch([
      db.update(apps).set({ name, updatedAt: isoNow(now) }).where(and(eq(apps.guid, app.guid), nameFree)),
      auditEventIfChanged(db, {
        type: "audit.app.update", actor, target: { guid: app.guid, type: "app", name }, spaceGuid: app.spaceGuid,
        data: { request: { name } }, now,
      }),
    ]);
    changes = update.meta.changes;
  } catch (err) {
    // Only a rename racing another onto the same name gets past the check to the
    // unique index; anything else is a real failure.
    if (!(await getAppByName(db, app.spaceGuid, name))) throw err;
    changes = 0;
  }
  if (changes === 1) return "ok";
  return (await getApp(db, app.guid)) ? "taken" : "gone";
}

async function getAppByName(db: Db, spaceGuid: string, name: string): Promise<App | undefined> {
  const [row] = await db.select().from(apps).where(and(eq(apps.spaceGuid, spaceGuid), eq(apps.name, name))).limit(1);
  return row && toApp(row);
}

/**
 * Deletes the app and everything under it. Cells holding its instances get a new
 * desired version first, so their long-polls hand them a set without those
 * instances and the containers stop; routers see the route table change.
 */
export async function deleteApp(db: Db, app: App, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<VersionSource[]> {
  const [bumped] = await db.batch([
    bumpCellSetsWhere(db, inArray(cells.guid, db.select({ g: sql`${instances.cellGuid}` }).from(instances).where(eq(instances.appGuid, app.guid))))
      .returning({ guid: cells.guid }),
    db.delete(instances).where(eq(instances.appGuid, app.guid)),
    db.delete(routeDestinations).where(eq(routeDestinations.appGuid, app.guid)),
    bumpRouteTable(db),
    db.delete(processes).where(eq(processes.appGuid, app.guid)),
    db.delete(droplets).where(eq(droplets.appGuid, app.guid)),
    db.delete(builds).where(eq(builds.appGuid, app.guid)),
    db.delete(packages).where(eq(packages.appGuid, app.guid)),
    db.delete(apps).where(eq(apps.guid, app.guid)),
    auditEvent(db, {
      type: "audit.app.delete-request", actor, target: { guid: app.guid, type: "app", name: app.name },
      spaceGuid: app.spaceGuid, data: { request: { recursive: true } }, now,
    }),
  ]);
  return [...bumped.map((c): VersionSource => ({ kind: "cell", cellGuid: c.guid })), { kind: "routes_table" }];
}

export type AppAction = "start" | "stop" | "restart";

/**
 * Sets the desired state. A process gets a new `version` (so running instances
 * are replaced) on restart, and on start when the app was stopped — CF's
 * ProcessModel sets a new version when its state changes to STARTED.
 */
export async function changeAppState(db: Db, app: App, action: AppAction, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<App | undefined> {
  const ts = isoNow(now);
  const wasStopped = sql`(select ${apps.state} from ${apps} where ${apps.guid} = ${app.guid}) = 'STOPPED'`;
  // One new version for all the app's processes, in one statement (no read first): a version is only ever
  // compared with its own process's instances, so processes of one app may share it.
  const ofApp = eq(processes.appGuid, app.guid);
  const versionBumps = action === "stop" ? [] : [
    db.update(processes).set({ version: newGuid(), updatedAt: ts }).where(action === "restart" ? ofApp : and(ofApp, wasStopped)),
  ];
  const state: AppState = action === "stop" ? "STOPPED" : "STARTED";
  // The version bumps run before the state update: "was stopped" reads the old state.
  const results = await db.batch([
    auditEvent(db, {
      type: `audit.app.${action}`, actor, target: { guid: app.guid, type: "app", name: app.name },
      spaceGuid: app.spaceGuid, data: {}, now,
    }),
    ...versionBumps,
    db.update(apps).set({ state, updatedAt: ts }).where(eq(apps.guid, app.guid)).returning(),
  ]);
  const [row] = results[results.length - 1] as (typeof apps.$inferSelect)[];
  return row && toApp(row);
}

/**
 * Merges `patch` into the app's env vars in one statement (json_patch: a null
 * value deletes the key). Returns the merged vars, "too_large" when the result
 * would pass MAX_ENV_JSON_BYTES, or undefined when the app is gone.
 */
export async function mergeEnvironmentVariables(
  db: Db,
  app: App,
  patch: Record<string, string | null>,
  actor: AuditEventInput["actor"],
  now: Date = new Date(),
): Promise<Record<string, string> | "too_large" | undefined> {
  const json = JSON.stringify(patch);
  const merged = sql`json_patch(${apps.environmentVariables}, ${json})`;
  const [rows] = await db.batch([
    db.update(apps).set({ environmentVariables: merged, updatedAt: isoNow(now) })
      .where(and(eq(apps.guid, app.guid), sql`length(cast(${merged} as blob)) <= ${MAX_ENV_JSON_BYTES}`))
      .returning({ env: apps.environmentVariables }),
    auditEventIfChanged(db, {
      // CC records an env change as an app update, the values hidden (they may be secrets).
      type: "audit.app.update", actor, target: { guid: app.guid, type: "app", name: app.name },
      spaceGuid: app.spaceGuid, data: { request: { environment_variables: "[PRIVATE DATA HIDDEN]" } }, now,
    }),
  ]);
  const [row] = rows;
  if (row) return parseEnv(row.env);
  return (await getApp(db, app.guid)) ? "too_large" : undefined;
}

/** Points the app at a droplet, only if that droplet is the app's and STAGED. */
export async function setCurrentDroplet(db: Db, app: App, dropletGuid: string, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<boolean> {
  const owned = sql`exists (select 1 from ${droplets} where ${droplets.guid} = ${dropletGuid} and ${droplets.appGuid} = ${app.guid} and ${droplets.state} = 'STAGED')`;
  const [update] = await db.batch([
    db.update(apps).set({ currentDropletGuid: dropletGuid, updatedAt: isoNow(now) }).where(and(eq(apps.guid, app.guid), owned)),
    auditEventIfChanged(db, {
      type: "audit.app.droplet.mapped", actor, target: { guid: app.guid, type: "app", name: app.name },
      spaceGuid: app.spaceGuid, data: { request: { droplet_guid: dropletGuid } }, now,
    }),
  ]);
  return update.meta.changes === 1;
}

/** The app's current droplet row, if it has one. */
export async function getCurrentDroplet(db: Db, app: App): Promise<typeof droplets.$inferSelect | undefined> {
  if (!app.currentDropletGuid) return undefined;
  const [row] = await db.select().from(droplets).where(and(eq(droplets.guid, app.currentDropletGuid), eq(droplets.appGuid, app.guid))).limit(1);
  return row;
}
