/**
 * @module The admin's Docker registry access: one row (id 1), absent until the
 * first edit. `version` goes up by one on every edit, in the same conditional
 * statement that writes the lists, so cells and the resolver can tell that what
 * they hold is stale (docs/architecture.md, rule 3).
 *
 * @example
 * const access = await getRegistryAccess(db); // the protocol shape cells receive
 */
import { eq, sql } from "drizzle-orm";
import type { RegistryAccess } from "../../shared/protocol/registry-access";
import { parsePemCertificate } from "../../shared/registry-access/pem-certificate";
import type { Db } from "../env";
import { isoNow } from "../http/ids";
import { type AuditEventInput, auditEventIfChanged } from "./audit";
import { retryCompareAndSet } from "./compare-and-set";
import { registryAccess } from "./schema";

const SINGLETON = 1;

export interface RegistryAccessRecord {
  access: RegistryAccess;
  /** Null until an admin first edits it. */
  updatedAt: string | null;
}

export type RegistryAccessChange = Partial<Omit<RegistryAccess, "version">>;

/** The singleton row's query, for a batch that must read it with other rows (a cell's desired set). */
export const registryAccessRowQuery = (db: Db) => db.select().from(registryAccess).where(eq(registryAccess.id, SINGLETON)).limit(1);

export async function getRegistryAccessRecord(db: Db): Promise<RegistryAccessRecord> {
  return registryAccessRecordOf((await registryAccessRowQuery(db))[0]);
}

/** The record of the row `registryAccessRowQuery` read (none yet: version 0, empty lists). */
export function registryAccessRecordOf(row: typeof registryAccess.$inferSelect | undefined): RegistryAccessRecord {
  if (!row) return { access: { version: 0, trusted_ca_certificates: [], insecure_registries: [], cell_only_registries: [] }, updatedAt: null };
  return {
    access: {
      version: row.version,
      trusted_ca_certificates: row.trustedCaCertificates,
      insecure_registries: row.insecureRegistries,
      cell_only_registries: row.cellOnlyRegistries,
    },
    updatedAt: row.updatedAt,
  };
}

/** What cells and the resolver use: exactly the protocol's `RegistryAccess`. */
export async function getRegistryAccess(db: Db): Promise<RegistryAccess> {
  return (await getRegistryAccessRecord(db)).access;
}

/** SHA-256 of each certificate's DER, so the audit trail names CAs without storing whole PEMs twice. */
async function fingerprints(pems: string[]): Promise<string[]> {
  return Promise.all(
    pems.map(async (pem) => {
      const parsed = parsePemCertificate(pem);
      if (!parsed.ok) throw new Error(`stored CA certificate ${parsed.error}`);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", parsed.der));
      return `sha256:${[...digest].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
    }),
  );
}

/**
 * The edit as one batch: an upsert that bumps `version` only if it still equals
 * `before.version` (so an edit based on a stale read writes nothing), and the
 * audit event, recorded only if the upsert wrote.
 */
export async function registryAccessUpdateStatements(
  db: Db,
  before: RegistryAccess,
  after: RegistryAccess,
  actor: AuditEventInput["actor"],
  now: Date,
) {
  const lists = {
    trustedCaCertificates: after.trusted_ca_certificates,
    insecureRegistries: after.insecure_registries,
    cellOnlyRegistries: after.cell_only_registries,
    updatedAt: isoNow(now),
  };
  const write = db
    .insert(registryAccess)
    .values({ id: SINGLETON, ...lists, version: before.version + 1 })
    .onConflictDoUpdate({
      target: registryAccess.id,
      set: { ...lists, version: sql`${registryAccess.version} + 1` },
      setWhere: eq(registryAccess.version, before.version),
    });
  const [oldCas, newCas] = await Promise.all([fingerprints(before.trusted_ca_certificates), fingerprints(after.trusted_ca_certificates)]);
  const event = auditEventIfChanged(db, {
    type: "audit.docker_registry_access.update",
    actor,
    target: { guid: "docker_registry_access", type: "docker_registry_access", name: "docker_registry_access" },
    data: {
      old: { version: before.version, trusted_ca_certificates: oldCas, insecure_registries: before.insecure_registries, cell_only_registries: before.cell_only_registries },
      new: { version: before.version + 1, trusted_ca_certificates: newCas, insecure_registries: after.insecure_registries, cell_only_registries: after.cell_only_registries },
    },
    now,
  });
  return [write, event] as const;
}

/**
 * Applies an edit (lists given replace the stored ones), retrying when another
 * admin edited in between. Each attempt reads the clock after the record, so
 * an edit that retried is not timed before the one it lost to (as updateFlag).
 */
export async function updateRegistryAccess(
  db: Db,
  change: RegistryAccessChange,
  actor: AuditEventInput["actor"],
  clock: () => Date = () => new Date(),
): Promise<RegistryAccessRecord> {
  return retryCompareAndSet("registry access", async () => {
    const before = (await getRegistryAccessRecord(db)).access;
    const now = clock();
    const after: RegistryAccess = {
      version: before.version + 1,
      trusted_ca_certificates: change.trusted_ca_certificates ?? before.trusted_ca_certificates,
      insecure_registries: change.insecure_registries ?? before.insecure_registries,
      cell_only_registries: change.cell_only_registries ?? before.cell_only_registries,
    };
    const [write] = await db.batch(await registryAccessUpdateStatements(db, before, after, actor, now));
    return write.meta.changes === 1 ? { access: after, updatedAt: isoNow(now) } : null;
  });
}
