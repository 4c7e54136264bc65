/**
 * @module `/v3/organizations`: admins create organizations and see all of them;
 * anyone else sees the organizations where they hold a role (others answer 404).
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { requireAdmin, requireUser } from "../auth/principal";
import { createOrganization, getOrganization, listOrganizations, type Organization } from "../db/organizations";
import type { AppEnv } from "../env";
import { resourceNotFound, unprocessable } from "../errors";
import { link } from "../http/links";
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
  relationships: { quota: { data: null } },
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
