/**
 * @module `/v3/organizations`: admins create organizations and see all of them;
 * anyone else sees the organizations where they hold a role (others answer 404).
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { requireAdmin, requireUser } from "../auth/principal";
import { deleteOrganizationTree } from "../db/tenancy-delete";
import { afterCommit } from "../http/after-commit";
import { acceptedWithJob } from "./jobs";
import { createOrganization, getOrganization, listOrganizations, type Organization } from "../db/organizations";
import type { AppEnv } from "../env";
import { resourceNotFound, unprocessable } from "../errors";
import { link } from "../http/links";
import { appsDomainGuid } from "../presenters/routes";
import { DEFAULT_ORGANIZATION_QUOTA_GUID } from "../quotas/repo";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery, resourceName } from "../http/validate";

export const organizations = new Hono<AppEnv>();

const CreateOrganization = z.strictObject({ name: resourceName, suspended: z.boolean().optional() });

const ListOrganizations = z.strictObject({
  ...pageQuery,
  names: filterList.optional(),
  guids: filterList.optional(),
  order_by: z.enum(["created_at", "-created_at", "name", "-name"]).default("created_at"),
});

export const presentOrganization = (c: Context, o: Organization) => ({
  guid: o.guid,
  created_at: o.createdAt,
  updated_at: o.updatedAt,
  name: o.name,
  suspended: o.suspended,
  // CC: every organization has exactly one quota; without its own, the default one (`cf org` names it).
  relationships: { quota: { data: { guid: o.quotaGuid ?? DEFAULT_ORGANIZATION_QUOTA_GUID } } },
  metadata: { labels: {}, annotations: {} },
  links: {
    self: link(c, `/v3/organizations/${o.guid}`),
    domains: link(c, `/v3/organizations/${o.guid}/domains`),
    default_domain: link(c, `/v3/organizations/${o.guid}/domains/default`),
  },
});

organizations.post("/", async (c) => {
  const actor = requireAdmin(c);
  const { name } = await parseJson(c, CreateOrganization);
  const org = await createOrganization(c.var.db, name, actor);
  if (!org) throw unprocessable(`Organization '${name}' already exists.`);
  return c.json(presentOrganization(c, org), 201);
});

organizations.get("/", async (c) => {
  const viewer = requireUser(c);
  const q = parseQuery(c, ListOrganizations);
  const page = await listOrganizations(c.var.db, viewer, { names: q.names, guids: q.guids, orderBy: q.order_by, page: q.page, perPage: q.per_page });
  return c.json(paginated(c.req.url, q, page.total, page.organizations.map((o) => presentOrganization(c, o))));
});

organizations.get("/:guid", async (c) => {
  const viewer = requireUser(c);
  const org = await getOrganization(c.var.db, c.req.param("guid"), viewer);
  if (!org) throw resourceNotFound("Organization");
  return c.json(presentOrganization(c, org));
});

/** Admins only (CC): everything in it goes, its apps stopping through convergence. */
organizations.delete("/:guid", async (c) => {
  const actor = requireAdmin(c);
  const org = await getOrganization(c.var.db, c.req.param("guid"), actor);
  if (!org) throw resourceNotFound("Organization");
  const sources = await deleteOrganizationTree(c.var.db, org, actor);
  // Freed room may fit instances waiting for a cell.
  afterCommit(c, `delete organization ${org.guid}`, { sources, wake: {} });
  return acceptedWithJob(c, "organization.delete", actor);
});

/**
 * Berth has no isolation segments: every app runs on the one shared pool of
 * cells, so an organization's default segment is none, as CC answers for an
 * organization that was never given one (`cf org` reads it).
 */
organizations.get("/:guid/relationships/default_isolation_segment", async (c) => {
  const viewer = requireUser(c);
  const guid = c.req.param("guid");
  if (!(await getOrganization(c.var.db, guid, viewer))) throw resourceNotFound("Organization");
  return c.json({
    data: null,
    links: { self: link(c, `/v3/organizations/${guid}/relationships/default_isolation_segment`), related: link(c, `/v3/isolation_segments`) },
  });
});

/** Berth's one shared domain (APPS_DOMAIN), as CC presents a shared domain. */
export async function presentAppsDomain(c: Context<AppEnv>) {
  const guid = await appsDomainGuid(c.env.APPS_DOMAIN);
  return {
    guid,
    created_at: "1970-01-01T00:00:00Z",
    updated_at: "1970-01-01T00:00:00Z",
    name: c.env.APPS_DOMAIN,
    internal: false,
    router_group: null,
    supported_protocols: ["http"],
    relationships: { organization: { data: null }, shared_organizations: { data: [] } },
    metadata: { labels: {}, annotations: {} },
    links: { self: link(c, `/v3/domains/${guid}`) },
  };
}

/** The domains an organization may use: the shared apps domain. */
organizations.get("/:guid/domains", async (c) => {
  const viewer = requireUser(c);
  if (!(await getOrganization(c.var.db, c.req.param("guid"), viewer))) throw resourceNotFound("Organization");
  const q = parseQuery(c, z.strictObject({ ...pageQuery, names: filterList.optional() }));
  const domain = await presentAppsDomain(c);
  const all = !q.names || q.names.includes(domain.name) ? [domain] : [];
  return c.json(paginated(c.req.url, q, all.length, all.slice((q.page - 1) * q.per_page, q.page * q.per_page)));
});

organizations.get("/:guid/domains/default", async (c) => {
  const viewer = requireUser(c);
  if (!(await getOrganization(c.var.db, c.req.param("guid"), viewer))) throw resourceNotFound("Organization");
  return c.json(await presentAppsDomain(c));
});
