/**
 * @module `/v3/admin/docker_registry_access` (admin only): trusted CA
 * certificates, insecure registries (host:port, IP or CIDR) and registries
 * reachable from cells only. Every entry is validated and stored canonically;
 * every edit bumps `version`, is audited and wakes the scheduler so cells get
 * the new access with their next desired set.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { parseCellOnlyEntry, parseInsecureEntry, type EntryResult } from "../../shared/registry-access/entries";
import { parsePemCertificate } from "../../shared/registry-access/pem-certificate";
import { requireAdmin } from "../auth/principal";
import { getRegistryAccessRecord, type RegistryAccessRecord, updateRegistryAccess } from "../db/registry-access";
import type { AppEnv } from "../env";
import { link } from "../http/links";
import { parseJson } from "../http/validate";
import { afterCommit } from "../http/after-commit";
import { allCellSources } from "../scheduling/versions";

export const registry_access = new Hono<AppEnv>();

/** Duplicates (after canonical spelling) are dropped: the lists are sets. */
const unique = (xs: string[]) => [...new Set(xs)];

const certificate = z
  .string()
  .max(64 * 1024)
  .transform((pem, ctx) => {
    const r = parsePemCertificate(pem);
    if (r.ok) return r.pem;
    ctx.addIssue({ code: "custom", message: r.error });
    return z.NEVER;
  });

const entry = (parse: (raw: string) => EntryResult) =>
  z
    .string()
    .min(1)
    .max(300)
    .transform((raw, ctx) => {
      const r = parse(raw.trim());
      if (r.ok) return r.entry;
      ctx.addIssue({ code: "custom", message: r.error });
      return z.NEVER;
    });

const UpdateAccess = z.strictObject({
  trusted_ca_certificates: z.array(certificate).max(100).transform(unique).optional(),
  insecure_registries: z.array(entry(parseInsecureEntry)).max(500).transform(unique).optional(),
  cell_only_registries: z.array(entry(parseCellOnlyEntry)).max(500).transform(unique).optional(),
});

const present = (c: Context, r: RegistryAccessRecord) => ({
  ...r.access,
  updated_at: r.updatedAt,
  links: { self: link(c, "/v3/admin/docker_registry_access") },
});

registry_access.get("/", async (c) => {
  requireAdmin(c);
  return c.json(present(c, await getRegistryAccessRecord(c.var.db)));
});

registry_access.patch("/", async (c) => {
  const actor = requireAdmin(c);
  const change = await parseJson(c, UpdateAccess);
  // An empty body edits nothing: no version bump, no event, no wake-up.
  if (Object.values(change).every((v) => v === undefined)) return c.json(present(c, await getRegistryAccessRecord(c.var.db)));
  const record = await updateRegistryAccess(c.var.db, change, actor);
  // The access is part of every cell's set: every cell's version moved.
  afterCommit(c, "registry_access", { sources: await allCellSources(c.var.db), wake: { full: true } });
  return c.json(present(c, record));
});
