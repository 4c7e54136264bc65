/**
 * @module What one convergence pass reads from D1, in one batch (one
 * consistent snapshot): desired processes (STARTED apps with a current
 * droplet), actual instances (without their specs: only replaced ones need
 * theirs), cells, the diego_docker flag and the cell-staged builds.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../env";
import type { ActualInstance, CellView, DesiredProcess, DesiredState } from "../../shared/convergence/model";
import { resolvedImageSchema, type ResolvedImage } from "../../shared/protocol/image";
import { apps, builds, cells, droplets, featureFlags, instances, processes } from "../db/schema";
import { DEFAULT_FLAGS } from "../db/feature-flags";
import { registryAccessVersionQuery } from "./versions";

export interface DesiredRow {
  process: typeof processes.$inferSelect;
  app: { guid: string; name: string; spaceGuid: string; environmentVariables: string };
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

export interface Snapshot {
  desired: DesiredState;
  rows: Map<string, DesiredRow>;
  actual: InstanceFacts[];
  cells: CellView[];
  /** Names and spaces of every app with instances or desired processes, for audit events. */
  apps: Map<string, { name: string; spaceGuid: string }>;
  stagingBuilds: { guid: string; cellGuid: string | null }[];
  registryAccessVersion: number;
}

const startedApps = (db: Db) => db.select({ g: apps.guid }).from(apps).where(eq(apps.state, "STARTED"));

function imageOf(spec: Record<string, unknown>): ResolvedImage | { error: string } {
  const r = resolvedImageSchema.safeParse(spec);
  return r.success ? r.data : { error: `the droplet's image spec is unusable: ${r.error.issues[0]?.message ?? "invalid"}` };
}

export async function readSnapshot(db: Db): Promise<Snapshot> {
  const [processRows, startedRows, dropletRows, instanceRows, cellRows, appRows, flagRows, stagingRows, accessRows] = await db.batch([
    // No joins in a D1 batch: drizzle maps batch rows by column name, and joined
    // tables share names (guid), so each table is read on its own and joined here.
    db.select().from(processes).where(inArray(processes.appGuid, startedApps(db))),
    db.select({ guid: apps.guid, name: apps.name, spaceGuid: apps.spaceGuid, environmentVariables: apps.environmentVariables, dropletGuid: apps.currentDropletGuid })
      .from(apps).where(eq(apps.state, "STARTED")),
    db.select({ guid: droplets.guid, packageGuid: droplets.packageGuid, processTypes: droplets.processTypes, imageSpec: droplets.imageSpec })
      .from(droplets).where(inArray(droplets.guid, db.select({ g: apps.currentDropletGuid }).from(apps).where(eq(apps.state, "STARTED")))),
    db.select({
      instance_guid: instances.instanceGuid, process_guid: instances.processGuid, app_guid: instances.appGuid, index: instances.index,
      process_version: instances.processVersion, cell_guid: instances.cellGuid, state: instances.state, presence: instances.presence,
      since: instances.since, crash_count: instances.crashCount, host_port: instances.hostPort, placement_error: instances.placementError,
      memory_mb: sql<number>`coalesce(json_extract(${instances.spec}, '$.memory_mb'), 0)`,
      disk_mb: sql<number>`coalesce(json_extract(${instances.spec}, '$.disk_mb'), 0)`,
    }).from(instances),
    db.select().from(cells),
    db.select({ guid: apps.guid, name: apps.name, spaceGuid: apps.spaceGuid }).from(apps)
      .where(inArray(apps.guid, db.selectDistinct({ g: instances.appGuid }).from(instances))),
    db.select({ enabled: featureFlags.enabled }).from(featureFlags).where(eq(featureFlags.name, "diego_docker")),
    db.select({ guid: builds.guid, cellGuid: builds.stagingCellGuid }).from(builds)
      .where(and(eq(builds.stagingLocation, "cell"), eq(builds.state, "STAGING"))),
    registryAccessVersionQuery(db),
  ]);

  const rows = new Map<string, DesiredRow>();
  const processesWanted: DesiredProcess[] = [];
  const appNames = new Map(appRows.map((a) => [a.guid, { name: a.name, spaceGuid: a.spaceGuid }]));
  const started = new Map(startedRows.map((a) => [a.guid, a]));
  const dropletsByGuid = new Map(dropletRows.map((d) => [d.guid, d]));
  for (const process of processRows) {
    const app = started.get(process.appGuid);
    const droplet = app?.dropletGuid ? dropletsByGuid.get(app.dropletGuid) : undefined;
    if (!app || !droplet) continue;
    const r = { process, app, droplet };
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
    desired: { processes: processesWanted, diego_docker: flagRows[0]?.enabled ?? DEFAULT_FLAGS.diego_docker },
    rows,
    actual: instanceRows.map((i) => ({ ...i, memory_mb: Number(i.memory_mb), disk_mb: Number(i.disk_mb) })),
    cells: cellRows.map((c) => ({
      guid: c.guid, zone: c.zone, state: c.state, last_heartbeat_at: c.lastHeartbeatAt, registered_at: Date.parse(c.createdAt),
      capacity: c.capacity, cached_layers: c.cachedLayers,
    })),
    apps: appNames,
    stagingBuilds: stagingRows,
    registryAccessVersion: accessRows[0]?.version ?? 0,
  };
}
