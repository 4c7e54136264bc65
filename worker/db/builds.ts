/**
 * @module Builds and the droplets they stage, in D1. A build is STAGING until
 * one conditional batch either writes its droplet and marks it STAGED, or
 * marks it FAILED: every write requires the build to still be STAGING, so a
 * late or repeated staging run changes nothing and a failed build leaves no
 * droplet behind.
 */
import { and, asc, count, eq, inArray, sql } from "drizzle-orm";
import type { ResolvedImage } from "../../shared/protocol/image";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "../env";
import { isoNow } from "../http/ids";
import { type AuditEventInput, auditEventIfChanged, auditEventWhere } from "./audit";
import { type Viewer, visibleTo } from "./roles";
import { apps, builds, droplets, packages, users } from "./schema";
import type { StagingLocation } from "../staging/location";

export interface Build {
  guid: string;
  appGuid: string;
  spaceGuid: string;
  packageGuid: string;
  state: "STAGING" | "STAGED" | "FAILED";
  error: string | null;
  dropletGuid: string | null;
  stagingLocation: string;
  createdByGuid: string;
  /** The creator's name (null when the user is gone, or the bootstrap admin). */
  createdByName: string | null;
  createdAt: string;
  updatedAt: string;
}

const columns = {
  guid: builds.guid, appGuid: builds.appGuid, spaceGuid: apps.spaceGuid, packageGuid: builds.packageGuid, state: builds.state,
  error: builds.error, dropletGuid: builds.dropletGuid, stagingLocation: builds.stagingLocation,
  createdByGuid: builds.createdByGuid, createdByName: users.name, createdAt: builds.createdAt, updatedAt: builds.updatedAt,
};

const selectBuilds = (db: Db) =>
  db.select(columns).from(builds).innerJoin(apps, eq(apps.guid, builds.appGuid)).leftJoin(users, eq(users.guid, builds.createdByGuid));

export interface NewBuild {
  guid: string;
  app: { guid: string; name: string; spaceGuid: string };
  packageGuid: string;
  stagingLocation: StagingLocation;
}

/** Inserts a STAGING build and its audit event; undefined when the app vanished meanwhile. */
export async function createBuild(db: Db, input: NewBuild, actor: AuditEventInput["actor"] & { guid: string }, now: Date = new Date()): Promise<Build | undefined> {
  const ts = isoNow(now);
  await db.batch([
    db.insert(builds).select(sql`select ${input.guid}, ${input.app.guid}, ${input.packageGuid}, 'STAGING', null, null, ${input.stagingLocation}, null, ${actor.guid}, ${ts}, ${ts}
      where exists (select 1 from ${apps} where ${apps.guid} = ${input.app.guid})`),
    auditEventIfChanged(db, {
      type: "audit.app.build.create", actor, target: { guid: input.app.guid, type: "app", name: input.app.name },
      spaceGuid: input.app.spaceGuid, data: { build_guid: input.guid, package_guid: input.packageGuid }, now,
    }),
    // Staging a package again is a restage (cf restage, berth restage): CC's audit.app.restage, which its v3 API leaves to the v2 restage endpoint Berth does not have.
    auditEventWhere(db, {
      type: "audit.app.restage", actor, target: { guid: input.app.guid, type: "app", name: input.app.name },
      spaceGuid: input.app.spaceGuid, data: {}, now,
    }, sql`exists (select 1 from ${builds} where ${builds.guid} = ${input.guid})
      and exists (select 1 from ${builds} where ${builds.packageGuid} = ${input.packageGuid} and ${builds.guid} <> ${input.guid})`),
  ]);
  return getBuild(db, input.guid);
}

export async function getBuild(db: Db, guid: string): Promise<Build | undefined> {
  const [row] = await selectBuilds(db).where(eq(builds.guid, guid)).limit(1);
  return row;
}

export interface BuildFilter {
  appGuids?: string[];
  packageGuids?: string[];
  states?: string[];
  guids?: string[];
  viewer: Viewer;
  page: number;
  perPage: number;
}

export async function listBuilds(db: Db, f: BuildFilter): Promise<{ total: number; builds: Build[] }> {
  const cond = and(
    f.appGuids && inArray(builds.appGuid, f.appGuids),
    f.packageGuids && inArray(builds.packageGuid, f.packageGuids),
    f.states && inArray(builds.state, f.states as Build["state"][]),
    f.guids && inArray(builds.guid, f.guids),
    visibleTo(db, f.viewer, apps.spaceGuid),
  );
  const [totals, rows] = await db.batch([
    db.select({ n: count() }).from(builds).innerJoin(apps, eq(apps.guid, builds.appGuid)).where(cond),
    selectBuilds(db).where(cond).orderBy(asc(builds.createdAt), sql`${builds}.rowid`).limit(f.perPage).offset((f.page - 1) * f.perPage),
  ]);
  return { total: totals[0]?.n ?? 0, builds: rows };
}

/** What staging needs to know about a build: its package's image and sealed credentials, and the app. */
export interface StagingInput {
  buildGuid: string;
  state: Build["state"];
  appGuid: string;
  packageGuid: string;
  image: string;
  username: string | null;
  /** Sealed (crypto/secrets); opened only by the stager, never logged. */
  passwordEncrypted: string | null;
}

export async function getStagingInput(db: Db, buildGuid: string): Promise<StagingInput | undefined> {
  const [row] = await db
    .select({
      buildGuid: builds.guid, state: builds.state, appGuid: builds.appGuid, packageGuid: builds.packageGuid,
      image: packages.image, username: packages.username, passwordEncrypted: packages.passwordEncrypted,
    })
    .from(builds)
    .innerJoin(packages, eq(packages.guid, builds.packageGuid))
    .where(eq(builds.guid, buildGuid))
    .limit(1);
  return row;
}

const stillStaging = (buildGuid: string) => and(eq(builds.guid, buildGuid), eq(builds.state, "STAGING"));

export interface StagedDroplet {
  guid: string;
  appGuid: string;
  buildGuid: string;
  packageGuid: string;
  /** CF's droplet `image`: the reference as the builder names it. */
  image: string;
  resolved: ResolvedImage;
  executionMetadata: string;
  processTypes: Record<string, string>;
}

/**
 * Writes the droplet and marks the build STAGED in one batch (one D1
 * transaction). The droplet is inserted only while the build is STAGING, so
 * both writes happen or neither. True when this call staged the build.
 */
export async function markStaged(db: Db, d: StagedDroplet, now: Date, alongside: BatchItem<"sqlite">[] = []): Promise<boolean> {
  const ts = isoNow(now);
  const [insert] = await db.batch([
    db.insert(droplets).select(sql`select ${d.guid}, ${d.appGuid}, ${d.buildGuid}, ${d.packageGuid}, 'STAGED', ${d.image},
        ${d.resolved.manifest_digest}, ${d.resolved.index_digest ?? null}, ${d.executionMetadata}, ${JSON.stringify(d.processTypes)},
        ${JSON.stringify(d.resolved)}, ${ts}, ${ts}
      where exists (select 1 from ${builds} where ${stillStaging(d.buildGuid)})`),
    db.update(builds).set({ state: "STAGED", dropletGuid: d.guid, error: null, updatedAt: ts })
      .where(and(stillStaging(d.buildGuid), sql`exists (select 1 from ${droplets} where ${droplets.guid} = ${d.guid})`)),
    ...alongside,
  ]);
  return insert.meta.changes === 1;
}

/** Marks a STAGING build FAILED with `error`; false when it had already finished. `alongside` commits in the same batch. */
export async function markFailed(db: Db, buildGuid: string, error: string, now: Date, alongside: BatchItem<"sqlite">[] = []): Promise<boolean> {
  const [r] = await db.batch([db.update(builds).set({ state: "FAILED", error, updatedAt: isoNow(now) }).where(stillStaging(buildGuid)), ...alongside]);
  return r.meta.changes === 1;
}

/** Leaves a STAGING build for a cell's staging task (the agent protocol picks such builds up). */
export async function markForCell(db: Db, buildGuid: string, now: Date): Promise<boolean> {
  const r = await db.update(builds).set({ stagingLocation: "cell", updatedAt: isoNow(now) }).where(stillStaging(buildGuid));
  return r.meta.changes === 1;
}
