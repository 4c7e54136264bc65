/**
 * @module What one convergence pass reads from D1: every cell (with what is
 * allocated on it, summed in SQL), the diego_docker flag, the cell-staged
 * builds, and — for a chosen set of apps — their desired processes and all
 * their instances (without specs: only replaced ones need theirs).
 *
 * A full pass chooses every app. An incremental pass chooses the apps its
 * wakes named, the apps with instances on the cells they named or on cells
 * whose heartbeat just expired, and the apps with something due (an
 * unplaced, crashed, or unacknowledged instance); converge() sees each chosen
 * app whole, so it never mistakes an unread instance for an undesired one.
 */
import { and, eq, inArray, isNotNull, lt, min, ne, or, sql } from "drizzle-orm";
import type { Db } from "../env";
import type { ConvergenceConfig } from "../../shared/convergence/config";
import { cellIsAlive } from "../../shared/convergence/cells";
import type { ActualInstance, CellView, DesiredProcess, DesiredState } from "../../shared/convergence/model";
import { resolvedImageSchema, type ResolvedImage } from "../../shared/protocol/image";
import type { Resources } from "../../shared/protocol/resources";
import { apps, builds, cells, droplets, featureFlags, instances, organizations, processes, routeDestinations, routes, spaces, specDiskMb, specMemoryMb } from "../db/schema";
import { DEFAULT_FLAGS } from "../db/feature-flags";
import { paramChunks } from "../db/param-chunks";
import { routeUrl } from "../db/routes";
import { registryAccessVersionQuery } from "./versions";

export interface DesiredRow {
  process: typeof processes.$inferSelect;
  app: { guid: string; name: string; spaceGuid: string; environmentVariables: string };
  /** The app's space and organization, for VCAP_APPLICATION. */
  space: { name: string; organization: { guid: string; name: string } | null };
  /** The process's mapped routes as `host.domain` (VCAP_APPLICATION's application_uris). */
  uris: string[];
  droplet: { guid: string; packageGuid: string | null; processTypes: Record<string, string>; imageSpec: Record<string, unknown> };
  /** The droplet's image, or why it cannot be run. */
  image: ResolvedImage | { error: string };
}

export interface InstanceFacts extends ActualInstance {
  app_guid: string;
  memory_mb: number;
  disk_mb: number;
  host_port: number | null;
  placement_error: string | null;
}

/** What every instance not CRASHED takes on its cell, summed over the whole fleet. */
export interface CellLoad {
  allocated: Resources;
  /** CLAIMED or STARTING: placement spreads starts. */
  starting: number;
}

export interface Snapshot {
  desired: DesiredState;
  rows: Map<string, DesiredRow>;
  /** Every instance of the chosen apps. */
  actual: InstanceFacts[];
  cells: CellView[];
  load: Map<string, CellLoad>;
  /** Names and spaces of the chosen apps, for audit events. */
  apps: Map<string, { name: string; spaceGuid: string }>;
  stagingBuilds: { guid: string; cellGuid: string | null }[];
  registryAccessVersion: number;
  /** Instances something may come due for (UNCLAIMED, CRASHED), fleet-wide, for the next alarm. */
  due: ActualInstance[];
  /** When the oldest unacknowledged claim was made, fleet-wide (its timeout is the next alarm). */
  oldestClaimSince: number | null;
}

export type SnapshotScope = "full" | { apps: string[]; cells: string[] };

function imageOf(spec: Record<string, unknown>): ResolvedImage | { error: string } {
  const r = resolvedImageSchema.safeParse(spec);
  return r.success ? r.data : { error: `the droplet's image spec is unusable: ${r.error.issues[0]?.message ?? "invalid"}` };
}

const instanceColumns = {
  instance_guid: instances.instanceGuid, process_guid: instances.processGuid, app_guid: instances.appGuid, index: instances.index,
  process_version: instances.processVersion, cell_guid: instances.cellGuid, state: instances.state, presence: instances.presence,
  since: instances.since, crash_count: instances.crashCount, host_port: instances.hostPort, placement_error: instances.placementError,
  memory_mb: sql<number>`coalesce(${specMemoryMb(instances.spec)}, 0)`,
  disk_mb: sql<number>`coalesce(${specDiskMb(instances.spec)}, 0)`,
};

/** What every instance not CRASHED takes on each cell: summed from the instances_cell_load index, parsing no spec. */
export const cellLoadQuery = (db: Db) => db.select({
  cell: instances.cellGuid,
  memory_mb: sql<number>`coalesce(sum(${specMemoryMb(instances.spec)}), 0)`,
  disk_mb: sql<number>`coalesce(sum(${specDiskMb(instances.spec)}), 0)`,
  containers: sql<number>`count(*)`,
  starting: sql<number>`sum(${instances.state} in ('CLAIMED', 'STARTING'))`,
}).from(instances).where(and(isNotNull(instances.cellGuid), ne(instances.state, "CRASHED"))).groupBy(instances.cellGuid);

/** When the oldest unacknowledged claim was made (by the instances_state_since index). */
export const oldestClaimQuery = (db: Db) =>
  db.select({ since: min(instances.since) }).from(instances).where(and(eq(instances.state, "CLAIMED"), eq(instances.presence, "ORDINARY")));

/** Fleet-wide facts every pass reads: cells and their load, the flag, staging, and what may come due. */
async function readFleet(db: Db, now: number, config: ConvergenceConfig) {
  const [cellRows, loadRows, flagRows, stagingRows, accessRows, dueRows, claimRows] = await db.batch([
    // The columns a cell view needs: not the cell's usage map, which only stats read.
    db.select({
      guid: cells.guid, zone: cells.zone, state: cells.state, lastHeartbeatAt: cells.lastHeartbeatAt, createdAt: cells.createdAt,
      capacity: cells.capacity, cachedLayers: cells.cachedLayers,
    }).from(cells),
    cellLoadQuery(db),
    db.select({ enabled: featureFlags.enabled }).from(featureFlags).where(eq(featureFlags.name, "diego_docker")),
    db.select({ guid: builds.guid, cellGuid: builds.stagingCellGuid }).from(builds)
      .where(and(eq(builds.stagingLocation, "cell"), eq(builds.state, "STAGING"))),
    registryAccessVersionQuery(db),
    db.select(instanceColumns).from(instances).where(or(
      inArray(instances.state, ["UNCLAIMED", "CRASHED"]),
      and(eq(instances.state, "CLAIMED"), lt(instances.since, now - config.claimTimeoutMs)),
    )),
    oldestClaimQuery(db),
  ]);
  const cellViews: CellView[] = cellRows.map((c) => ({
    guid: c.guid, zone: c.zone, state: c.state, last_heartbeat_at: c.lastHeartbeatAt, registered_at: Date.parse(c.createdAt),
    capacity: c.capacity, cached_layers: c.cachedLayers,
  }));
  const load = new Map(loadRows.filter((r) => r.cell !== null).map((r) => [r.cell!, {
    allocated: { memory_mb: Number(r.memory_mb), disk_mb: Number(r.disk_mb), containers: Number(r.containers) },
    starting: Number(r.starting),
  }]));
  return {
    cells: cellViews, load, stagingBuilds: stagingRows, registryAccessVersion: accessRows[0]?.version ?? 0,
    diego_docker: flagRows[0]?.enabled ?? DEFAULT_FLAGS.diego_docker,
    due: dueRows.map((i) => ({ ...i, memory_mb: Number(i.memory_mb), disk_mb: Number(i.disk_mb) })),
    oldestClaimSince: claimRows[0]?.since ?? null,
  };
}

/** The apps an incremental pass reads: named, on named or newly silent cells, or with something due. */
async function chosenApps(db: Db, scope: { apps: string[]; cells: string[] }, fleet: Awaited<ReturnType<typeof readFleet>>, now: number, config: ConvergenceConfig): Promise<string[]> {
  const chosen = new Set([...scope.apps, ...fleet.due.map((i) => i.app_guid)]);
  const silent = fleet.cells.filter((c) => c.state === "ACTIVE" && !cellIsAlive(c, now, config)).map((c) => c.guid);
  for (const part of paramChunks([...new Set([...scope.cells, ...silent])])) {
    const rows = await db.selectDistinct({ app: instances.appGuid }).from(instances).where(inArray(instances.cellGuid, part));
    for (const r of rows) chosen.add(r.app);
  }
  return [...chosen];
}

export async function readSnapshot(db: Db, scope: SnapshotScope, now: number, config: ConvergenceConfig): Promise<Snapshot> {
  const fleet = await readFleet(db, now, config);
  const appGuids = scope === "full" ? null : await chosenApps(db, scope, fleet, now, config);

  const processRows: (typeof processes.$inferSelect)[] = [];
  const startedRows: { guid: string; name: string; spaceGuid: string; environmentVariables: string; dropletGuid: string | null }[] = [];
  const dropletRows: DesiredRow["droplet"][] = [];
  const instanceRows: InstanceFacts[] = [];
  const appRows: { guid: string; name: string; spaceGuid: string }[] = [];
  const spaceRows: { guid: string; name: string; orgGuid: string }[] = [];
  const orgRows: { guid: string; name: string }[] = [];
  const destinationRows: { appGuid: string; processType: string; routeGuid: string }[] = [];
  const routeRows: { guid: string; host: string; domain: string; path: string }[] = [];
  // A full pass reads each table once; an incremental one reads the chosen apps, 100 parameters at a time (D1's cap).
  const parts = appGuids === null ? [null] : paramChunks(appGuids);
  for (const part of parts) {
    const ofApps = (column: typeof apps.guid | typeof instances.appGuid) => (part === null ? undefined : inArray(column, part));
    const startedApps = db.select({ g: apps.guid }).from(apps).where(and(eq(apps.state, "STARTED"), ofApps(apps.guid)));
    // No joins in a D1 batch: drizzle maps batch rows by column name, and joined
    // tables share names (guid), so each table is read on its own and joined here.
    const startedSpaces = db.select({ g: apps.spaceGuid }).from(apps).where(and(eq(apps.state, "STARTED"), ofApps(apps.guid)));
    const startedRoutes = db.select({ g: routeDestinations.routeGuid }).from(routeDestinations).where(inArray(routeDestinations.appGuid, startedApps));
    const [p, s, d, i, a, sp, o, rd, r] = await db.batch([
      db.select().from(processes).where(inArray(processes.appGuid, startedApps)),
      db.select({ guid: apps.guid, name: apps.name, spaceGuid: apps.spaceGuid, environmentVariables: apps.environmentVariables, dropletGuid: apps.currentDropletGuid })
        .from(apps).where(and(eq(apps.state, "STARTED"), ofApps(apps.guid))),
      db.select({ guid: droplets.guid, packageGuid: droplets.packageGuid, processTypes: droplets.processTypes, imageSpec: droplets.imageSpec })
        .from(droplets).where(inArray(droplets.guid, db.select({ g: apps.currentDropletGuid }).from(apps).where(and(eq(apps.state, "STARTED"), ofApps(apps.guid))))),
      db.select(instanceColumns).from(instances).where(ofApps(instances.appGuid)),
      db.select({ guid: apps.guid, name: apps.name, spaceGuid: apps.spaceGuid }).from(apps)
        .where(part === null ? inArray(apps.guid, db.selectDistinct({ g: instances.appGuid }).from(instances)) : inArray(apps.guid, part)),
      db.select({ guid: spaces.guid, name: spaces.name, orgGuid: spaces.organizationGuid }).from(spaces).where(inArray(spaces.guid, startedSpaces)),
      db.select({ guid: organizations.guid, name: organizations.name }).from(organizations)
        .where(inArray(organizations.guid, db.select({ g: spaces.organizationGuid }).from(spaces).where(inArray(spaces.guid, startedSpaces)))),
      db.select({ appGuid: routeDestinations.appGuid, processType: routeDestinations.processType, routeGuid: routeDestinations.routeGuid })
        .from(routeDestinations).where(inArray(routeDestinations.appGuid, startedApps)),
      db.select({ guid: routes.guid, host: routes.host, domain: routes.domain, path: routes.path }).from(routes).where(inArray(routes.guid, startedRoutes)),
    ]);
    processRows.push(...p);
    startedRows.push(...s);
    dropletRows.push(...d);
    instanceRows.push(...i.map((r) => ({ ...r, memory_mb: Number(r.memory_mb), disk_mb: Number(r.disk_mb) })));
    appRows.push(...a);
    spaceRows.push(...sp);
    orgRows.push(...o);
    destinationRows.push(...rd);
    routeRows.push(...r);
  }

  const rows = new Map<string, DesiredRow>();
  const processesWanted: DesiredProcess[] = [];
  const appNames = new Map(appRows.map((a) => [a.guid, { name: a.name, spaceGuid: a.spaceGuid }]));
  const started = new Map(startedRows.map((a) => [a.guid, a]));
  const dropletsByGuid = new Map(dropletRows.map((d) => [d.guid, d]));
  const orgsByGuid = new Map(orgRows.map((o) => [o.guid, o]));
  const spacesByGuid = new Map(spaceRows.map((sp) => [sp.guid, { name: sp.name, organization: orgsByGuid.get(sp.orgGuid) ?? null }]));
  const uriOf = new Map(routeRows.map((r) => [r.guid, routeUrl(r)]));
  for (const process of processRows) {
    const app = started.get(process.appGuid);
    const droplet = app?.dropletGuid ? dropletsByGuid.get(app.dropletGuid) : undefined;
    if (!app || !droplet) continue;
    const uris = destinationRows.filter((d) => d.appGuid === app.guid && d.processType === process.type).flatMap((d) => uriOf.get(d.routeGuid) ?? []);
    const r = { process, app, droplet, space: spacesByGuid.get(app.spaceGuid) ?? { name: "", organization: null }, uris };
    const image = imageOf(r.droplet.imageSpec);
    rows.set(r.process.guid, { ...r, image });
    appNames.set(r.app.guid, { name: r.app.name, spaceGuid: r.app.spaceGuid });
    processesWanted.push({
      process_guid: r.process.guid, app_guid: r.app.guid, version: r.process.version, instances: r.process.instances,
      memory_mb: r.process.memoryInMb, disk_mb: r.process.diskInMb, lifecycle: "docker",
      layers: "error" in image ? [] : image.layers.map((l) => ({ digest: l.digest, size: l.size })),
    });
  }
  return {
    desired: { processes: processesWanted, diego_docker: fleet.diego_docker },
    rows,
    actual: instanceRows,
    cells: fleet.cells,
    load: fleet.load,
    apps: appNames,
    stagingBuilds: fleet.stagingBuilds,
    registryAccessVersion: fleet.registryAccessVersion,
    due: fleet.due,
    oldestClaimSince: fleet.oldestClaimSince,
  };
}
