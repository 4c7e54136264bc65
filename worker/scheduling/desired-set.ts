/**
 * @module A cell's desired set, built from D1 in one batch (one consistent
 * snapshot): the instances placed on it that should run (CLAIMED, STARTING,
 * RUNNING — never STOPPING or CRASHED), the staging tasks assigned to it, and
 * the registry access. Pull credentials are opened here, never stored plain.
 */
import { and, eq, inArray } from "drizzle-orm";
import type { Bindings, Db } from "../env";
import type { DesiredSet } from "../../shared/protocol/desired-set";
import type { Credentials } from "../../shared/protocol/image";
import type { InstanceSpec } from "../../shared/protocol/instance";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";
import { builds, instances, packages } from "../db/schema";
import { registryAccessRecordOf, registryAccessRowQuery } from "../db/registry-access";
import { openSecret, packageAad } from "../crypto/secrets";
import { STARTED_STATES } from "../../shared/convergence/model";
import { cellSetVersion, cellVersionQuery } from "./versions";
import { parseStoredSpec } from "./stored-spec";


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

/** The whole desired set of a cell, or undefined for an unknown cell. */
export async function buildDesiredSet(db: Db, env: Pick<Bindings, "ENCRYPTION_KEY">, cellGuid: string): Promise<DesiredSet | undefined> {
  const stagingHere = and(eq(builds.stagingLocation, "cell"), eq(builds.stagingCellGuid, cellGuid), eq(builds.state, "STAGING"));
  const [cell, rows, tasks, taskPackages, access] = await db.batch([
    cellVersionQuery(db, cellGuid),
    db.select({ guid: instances.instanceGuid, spec: instances.spec }).from(instances)
      .where(and(eq(instances.cellGuid, cellGuid), inArray(instances.state, [...STARTED_STATES])))
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
  const specs: InstanceSpec[] = await Promise.all(
    rows.map(async (r) => {
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
    instances: specs,
    staging_tasks: stagingTasks,
    registry_access: registry,
  };
}
