/**
 * @module `/v3/organization_quotas` and `/v3/space_quotas` in CC's shapes:
 * admins define quotas (total memory, memory per instance, app instances,
 * log rate, routes; null is unlimited), apply them to organizations or to
 * spaces of the space quota's organization, and delete unused ones. Every
 * user may read them (CC shows quota definitions to all). The limits are
 * enforced where apps scale and start and routes are made (worker/quotas).
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { requireAdmin, requireUser } from "../auth/principal";
import type { UserPrincipal } from "../auth/scope";
import { getOrganization } from "../db/organizations";
import { getSpace } from "../db/spaces";
import type { AppEnv } from "../env";
import { resourceNotFound, unprocessable } from "../errors";
import { link } from "../http/links";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";
import { acceptedWithJob } from "./jobs";
import {
  appliedTo, applyQuota, createQuota, DEFAULT_ORGANIZATION_QUOTA_GUID, deleteQuota, getQuota, listQuotas, removeSpaceQuota, updateQuota,
  type Quota, type QuotaInput,
} from "../quotas/repo";

const limit = z.number().int().min(0).nullable().optional();
const ToMany = z.strictObject({ data: z.array(z.strictObject({ guid: z.string().min(1).max(255) })).max(500) });
const ToOne = z.strictObject({ data: z.strictObject({ guid: z.string().min(1).max(255) }) });

const limitsBody = {
  name: z.string().min(1).max(250),
  apps: z.strictObject({
    total_memory_in_mb: limit, per_process_memory_in_mb: limit, total_instances: limit, log_rate_limit_in_bytes_per_second: limit,
    per_app_tasks: z.null().optional(),
  }).optional(),
  routes: z.strictObject({ total_routes: limit, total_reserved_ports: z.null().optional() }).optional(),
};

const CreateOrgQuota = z.strictObject({ ...limitsBody, relationships: z.strictObject({ organizations: ToMany.optional() }).optional() });
const CreateSpaceQuota = z.strictObject({ ...limitsBody, relationships: z.strictObject({ organization: ToOne, spaces: ToMany.optional() }) });
const UpdateQuota = z.strictObject({ name: limitsBody.name.optional(), apps: limitsBody.apps, routes: limitsBody.routes });

/** The body's limits as stored; a field left out is unlimited on create and unchanged on update. */
function limitsFrom(body: z.infer<typeof UpdateQuota>): Partial<QuotaInput> {
  const out: Partial<QuotaInput> = {};
  if (body.name !== undefined) out.name = body.name;
  const a = body.apps;
  if (a?.total_memory_in_mb !== undefined) out.totalMemoryInMb = a.total_memory_in_mb;
  if (a?.per_process_memory_in_mb !== undefined) out.perProcessMemoryInMb = a.per_process_memory_in_mb;
  if (a?.total_instances !== undefined) out.totalInstances = a.total_instances;
  if (a?.log_rate_limit_in_bytes_per_second !== undefined) out.logRateLimitInBytesPerSecond = a.log_rate_limit_in_bytes_per_second;
  if (body.routes?.total_routes !== undefined) out.totalRoutes = body.routes.total_routes;
  return out;
}

const UNLIMITED: Omit<QuotaInput, "name"> = { totalMemoryInMb: null, perProcessMemoryInMb: null, totalInstances: null, logRateLimitInBytesPerSecond: null, totalRoutes: null };

async function present(c: Context<AppEnv>, q: Quota) {
  const base = q.scope === "organization" ? "organization_quotas" : "space_quotas";
  const applied = (await appliedTo(c.var.db, q)).map((guid) => ({ guid }));
  return {
    guid: q.guid, created_at: q.createdAt, updated_at: q.updatedAt, name: q.name,
    apps: {
      total_memory_in_mb: q.totalMemoryInMb, per_process_memory_in_mb: q.perProcessMemoryInMb, total_instances: q.totalInstances,
      log_rate_limit_in_bytes_per_second: q.logRateLimitInBytesPerSecond, per_app_tasks: null,
    },
    services: { paid_services_allowed: true, total_service_instances: null, total_service_keys: null },
    routes: { total_routes: q.totalRoutes, total_reserved_ports: null },
    ...(q.scope === "organization" ? { domains: { total_domains: null } } : {}),
    relationships: q.scope === "organization"
      ? { organizations: { data: applied } }
      : { organization: { data: { guid: q.organizationGuid } }, spaces: { data: applied } },
    links: {
      self: link(c, `/v3/${base}/${q.guid}`),
      ...(q.scope === "space" ? { organization: link(c, `/v3/organizations/${q.organizationGuid}`) } : {}),
    },
  };
}

/** Whether `guid` names an organization (or space) the quota may apply to, as `actor` sees it. */
type TargetCheck = (c: Context<AppEnv>, actor: UserPrincipal, q: Pick<Quota, "organizationGuid">) => (guid: string) => Promise<unknown>;

function quotaRoutes(scope: Quota["scope"], targetExists: TargetCheck) {
  const api = new Hono<AppEnv>();
  const targets = scope === "organization" ? "organizations" : "spaces";
  const what = scope === "organization" ? "Organization quota" : "Space quota";
  const find = async (c: Context<AppEnv>) => {
    const q = await getQuota(c.var.db, c.req.param("guid") ?? "", scope);
    if (!q) throw resourceNotFound(what);
    return q;
  };
  const taken = (name: string) => unprocessable(`${what} '${name}' already exists.`);

  api.get("/", async (c) => {
    requireUser(c);
    const q = parseQuery(c, z.strictObject(pageQuery));
    const page = await listQuotas(c.var.db, scope, q.page, q.per_page);
    return c.json(paginated(c.req.url, q, page.total, await Promise.all(page.quotas.map((x) => present(c, x)))));
  });

  api.get("/:guid", async (c) => {
    requireUser(c);
    return c.json(await present(c, await find(c)));
  });

  api.patch("/:guid", async (c) => {
    requireAdmin(c);
    const q = await find(c);
    const body = await parseJson(c, UpdateQuota);
    const updated = await updateQuota(c.var.db, q, limitsFrom(body));
    if (updated === "name_taken") throw taken(body.name!);
    return c.json(await present(c, updated));
  });

  api.delete("/:guid", async (c) => {
    const actor = requireAdmin(c);
    const q = await find(c);
    if (q.guid === DEFAULT_ORGANIZATION_QUOTA_GUID) throw unprocessable("The default organization quota cannot be deleted.");
    if ((await appliedTo(c.var.db, q)).length > 0) {
      throw unprocessable(`This quota is applied to one or more ${scope === "organization" ? "organizations" : "spaces"}. Remove this quota from all of them before deleting.`);
    }
    await deleteQuota(c.var.db, q.guid);
    return acceptedWithJob(c, `${scope}_quota.delete`, actor);
  });

  // Applies the quota to more organizations (or spaces); answers the whole list.
  api.post(`/:guid/relationships/${targets}`, async (c) => {
    const actor = requireAdmin(c);
    const q = await find(c);
    const guids = (await parseJson(c, ToMany)).data.map((d) => d.guid);
    await resolveAll(guids, targetExists(c, actor, q), scope === "organization" ? "organization" : "space");
    await applyQuota(c.var.db, q, guids);
    const base = scope === "organization" ? "organization_quotas" : "space_quotas";
    return c.json({ data: (await appliedTo(c.var.db, q)).map((guid) => ({ guid })), links: { self: link(c, `/v3/${base}/${q.guid}/relationships/${targets}`) } });
  });

  return { api, find, taken };
}

/** Checks every guid names something the admin can see; CC's wording for relationships that do not resolve. */
async function resolveAll(guids: string[], exists: (guid: string) => Promise<unknown>, what: string): Promise<void> {
  for (const guid of guids) if (!(await exists(guid))) throw unprocessable(`Invalid ${what}. Ensure that the ${what} exists and you have access to it.`);
}

const orgExists: TargetCheck = (c, actor) => (guid) => getOrganization(c.var.db, guid, actor);
/** Spaces a space quota may apply to: visible ones in its organization. */
const spaceOf: TargetCheck = (c, actor, q) => async (guid) => {
  const s = await getSpace(c.var.db, guid, actor);
  return s && s.organizationGuid === q.organizationGuid ? s : undefined;
};

const org = quotaRoutes("organization", orgExists);
export const organizationQuotas = org.api;

organizationQuotas.post("/", async (c) => {
  const actor = requireAdmin(c);
  const body = await parseJson(c, CreateOrgQuota);
  const orgs = body.relationships?.organizations?.data.map((d) => d.guid) ?? [];
  await resolveAll(orgs, orgExists(c, actor, { organizationGuid: "" }), "organization");
  const created = await createQuota(c.var.db, "organization", { ...UNLIMITED, ...limitsFrom(body), name: body.name });
  if (!created) throw org.taken(body.name);
  await applyQuota(c.var.db, created, orgs);
  return c.json(await present(c, created), 201);
});

const space = quotaRoutes("space", spaceOf);
export const spaceQuotas = space.api;

spaceQuotas.post("/", async (c) => {
  const actor = requireAdmin(c);
  const body = await parseJson(c, CreateSpaceQuota);
  const orgGuid = body.relationships.organization.data.guid;
  await resolveAll([orgGuid], orgExists(c, actor, { organizationGuid: "" }), "organization");
  const spaceGuids = body.relationships.spaces?.data.map((d) => d.guid) ?? [];
  await resolveAll(spaceGuids, spaceOf(c, actor, { organizationGuid: orgGuid }), "space");
  const created = await createQuota(c.var.db, "space", { ...UNLIMITED, ...limitsFrom(body), name: body.name }, orgGuid);
  if (!created) throw space.taken(body.name);
  await applyQuota(c.var.db, created, spaceGuids);
  return c.json(await present(c, created), 201);
});

spaceQuotas.delete("/:guid/relationships/spaces/:space", async (c) => {
  requireAdmin(c);
  const q = await space.find(c);
  await removeSpaceQuota(c.var.db, q, c.req.param("space"));
  return c.body(null, 204);
});
