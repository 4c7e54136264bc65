/**
 * @module Docker packages in D1. A docker package is READY at once (CF's
 * PackageCreate); the registry password is stored only sealed (crypto/secrets).
 */
import { and, asc, count, desc, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../env";
import { isoNow } from "../http/ids";
import { type AuditEventInput, auditEventIfChanged } from "./audit";
import { apps, packages } from "./schema";
import type { Listing } from "./listing";
import { visibleTo } from "./roles";

export interface Package {
  guid: string;
  appGuid: string;
  spaceGuid: string;
  type: "docker";
  state: string;
  image: string;
  username: string | null;
  /** Whether a password is stored; the sealed value never leaves the db layer through here. */
  hasPassword: boolean;
  createdAt: string;
  updatedAt: string;
}

const columns = {
  guid: packages.guid, appGuid: packages.appGuid, spaceGuid: apps.spaceGuid, type: packages.type, state: packages.state,
  image: packages.image, username: packages.username,
  hasPassword: sql<number>`${packages.passwordEncrypted} is not null`,
  createdAt: packages.createdAt, updatedAt: packages.updatedAt,
};

type Row = Omit<Package, "hasPassword"> & { hasPassword: number };
const toPackage = (r: Row): Package => ({ ...r, hasPassword: r.hasPassword === 1 });

function selectPackages(db: Db) {
  return db.select(columns).from(packages).innerJoin(apps, eq(apps.guid, packages.appGuid));
}

export interface NewPackage {
  guid: string;
  appGuid: string;
  appName: string;
  spaceGuid: string;
  image: string;
  username: string | null;
  /** Already sealed with the package guid as AAD. */
  passwordEncrypted: string | null;
}

/** Inserts a READY docker package; undefined when the app is gone by then (no foreign-key error). */
export async function createPackage(db: Db, input: NewPackage, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<Package | undefined> {
  const ts = isoNow(now);
  await db.batch([
    db.insert(packages).select(sql`select ${input.guid}, ${input.appGuid}, 'docker', 'READY', ${input.image}, ${input.username}, ${input.passwordEncrypted}, ${ts}, ${ts}
      where exists (select 1 from ${apps} where ${apps.guid} = ${input.appGuid})`),
    auditEventIfChanged(db, {
      type: "audit.app.package.create", actor, target: { guid: input.appGuid, type: "app", name: input.appName },
      spaceGuid: input.spaceGuid, data: { package_guid: input.guid, request: { type: "docker", data: { image: input.image } } }, now,
    }),
  ]);
  return getPackage(db, input.guid);
}

export async function getPackage(db: Db, guid: string): Promise<Package | undefined> {
  const [row] = await selectPackages(db).where(eq(packages.guid, guid)).limit(1);
  return row && toPackage(row);
}

export interface PackageFilter extends Listing {
  appGuids?: string[];
  guids?: string[];
  states?: string[];
  types?: string[];
  spaceGuids?: string[];
  /** Newest first (CC's order_by=-created_at; the cf CLI asks for the latest package so). */
  descending?: boolean;
}

export async function listPackages(db: Db, f: PackageFilter): Promise<{ total: number; packages: Package[] }> {
  const cond = and(
    f.appGuids && inArray(packages.appGuid, f.appGuids),
    f.guids && inArray(packages.guid, f.guids),
    f.states && inArray(packages.state, f.states),
    f.types && inArray(packages.type, f.types as "docker"[]),
    f.spaceGuids && inArray(apps.spaceGuid, f.spaceGuids),
    visibleTo(db, f.viewer, apps.spaceGuid),
  );
  const [totals, rows] = await db.batch([
    db.select({ n: count() }).from(packages).innerJoin(apps, eq(apps.guid, packages.appGuid)).where(cond),
    selectPackages(db).where(cond).orderBy(...(f.descending ? [desc(packages.createdAt), sql`${packages}.rowid desc`] : [asc(packages.createdAt), sql`${packages}.rowid`]))
      .limit(f.perPage).offset((f.page - 1) * f.perPage),
  ]);
  return { total: totals[0]?.n ?? 0, packages: rows.map(toPackage) };
}
