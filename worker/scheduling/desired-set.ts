/**
 * @module A cell's desired set, built from D1 in one batch (one consistent
 * snapshot): the instances placed on it that should run (CLAIMED, STARTING,
 * RUNNING — never STOPPING or CRASHED), the staging tasks assigned to it, and
 * the registry access. Pull credentials are opened here, never stored plain.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Bindings, Db } from "../env";
import type { DesiredInstance, DesiredSet, SpecMode } from "../../shared/protocol/desired-set";
import type { Credentials } from "../../shared/protocol/image";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";
import { builds, instances, packages } from "../db/schema";
import { registryAccessRecordOf, registryAccessRowQuery } from "../db/registry-access";
import { openSecret, packageAad } from "../crypto/secrets";
import { STARTED_STATES } from "../../shared/convergence/model";
import { cellSetVersion, cellVersionQuery } from "./versions";
import { parseStoredSpec } from "./stored-spec";
import { credentialHolds, type CellCredential } from "./cells-repo";


/** Opens each package's password once per set. */
function credentialsOpener(db: Db, env: Pick<Bindings, "ENCRYPTION_KEY">) {
  const cache = new Map<string, Promise<Credentials | undefined>>();
  return (packageGuid: string | null): Promise<Credentials | undefined> => {
    if (packageGuid === null) return Promise.resolve(undefined);
    let found = cache.get(packageGuid);
    if (!found) {
      found = (async () => {
        const [pkg] = await db.select({ username: packages.username, sealed: packages.passwordEncrypted }).from(packages).where(eq(packages.guid, packageGuid)).limit(1);
        if (!pkg?.username) return undefined;
        const password = pkg.sealed ? await openSecret(env.ENCRYPTION_KEY, pkg.sealed, packageAad(packageGuid)) : "";
        return { username: pkg.username, password };
      })();
      cache.set(packageGuid, found);
    }
    return found;
  };
}

/**
 * The whole desired set of the cell `claim` names, or undefined when no cell has that guid and credential
 * (checked in the set's own batch; nothing is opened or answered before). With `specs: "new"` the instances
 * the cell has taken (STARTING, RUNNING) come as references, and their specs are not even read.
 */
export async function buildDesiredSet(db: Db, env: Pick<Bindings, "ENCRYPTION_KEY">, claim: CellCredential, specs: SpecMode = "all"): Promise<DesiredSet | undefined> {
  const cellGuid = claim.guid;
  const holds = credentialHolds(db, claim);
  const stagingHere = and(eq(builds.stagingLocation, "cell"), eq(builds.stagingCellGuid, cellGuid), eq(builds.state, "STAGING"), holds);
  const [cell, rows, tasks, taskPackages, access] = await db.batch([
    cellVersionQuery(db, claim),
    db.select({
      guid: instances.instanceGuid, processGuid: instances.processGuid, index: instances.index,
      spec: specs === "all" ? instances.spec : sql<unknown>`case when ${instances.state} = 'CLAIMED' then ${instances.spec} end`.mapWith(instances.spec).as("spec"),
    }).from(instances)
      .where(and(eq(instances.cellGuid, cellGuid), inArray(instances.state, [...STARTED_STATES]), holds))
      .orderBy(instances.processGuid, instances.index),
    // No joins in a D1 batch (drizzle maps batch rows by column name; both tables have guid).
    db.select({ buildGuid: builds.guid, packageGuid: builds.packageGuid }).from(builds).where(stagingHere).orderBy(builds.createdAt),
    db.select({ guid: packages.guid, image: packages.image }).from(packages)
      .where(inArray(packages.guid, db.select({ g: builds.packageGuid }).from(builds).where(stagingHere))),
    // In the same batch: the set's version is computed from this very access, so they agree.
    registryAccessRowQuery(db),
  ]);
  const images = new Map(taskPackages.map((p) => [p.guid, p.image]));
  if (!cell[0]) return undefined;
  const registry = registryAccessRecordOf(access[0]).access;
  const credentials = credentialsOpener(db, env);
  const desired: DesiredInstance[] = await Promise.all(
    rows.map(async (r): Promise<DesiredInstance> => {
      if (r.spec === null) return { instance_guid: r.guid, process_guid: r.processGuid, index: r.index, taken: true };
      const { package_guid, ...spec } = parseStoredSpec(r.guid, r.spec);
      const creds = await credentials(package_guid);
      return creds ? { ...spec, image: { ...spec.image, credentials: creds } } : spec;
    }),
  );
  const stagingTasks = await Promise.all(
    tasks.filter((t) => images.has(t.packageGuid)).map(async (t) => {
      const creds = await credentials(t.packageGuid);
      return { build_guid: t.buildGuid, image: images.get(t.packageGuid)!, ...(creds ? { credentials: creds } : {}), registry_access_version: registry.version };
    }),
  );
  return {
    protocol: PROTOCOL_VERSION,
    version: cellSetVersion(cell[0].version, registry.version),
    instances: desired,
    staging_tasks: stagingTasks,
    registry_access: registry,
  };
}
