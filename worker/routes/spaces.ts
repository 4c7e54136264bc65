/**
 * @module `/v3/spaces`: admins create spaces in an organization and see all of
 * them; a developer sees only the spaces they are a member of (others answer
 * 404, as CC does).
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { actionsInOrg, requireUser } from "../auth/principal";
import { deleteSpaceTree } from "../db/tenancy-delete";
import { afterCommit } from "../http/after-commit";
import { acceptedWithJob } from "./jobs";
import { DEFAULT_ORGANIZATION_GUID, getOrganization } from "../db/organizations";
import { createSpace, getSpace, listSpaces, type Space } from "../db/spaces";
import type { AppEnv } from "../env";
import { notAuthorized, resourceNotFound, unprocessable } from "../errors";
import { link } from "../http/links";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery, resourceName } from "../http/validate";

export const spaces = new Hono<AppEnv>();

const ToOne = z.strictObject({ data: z.strictObject({ guid: z.string().min(1).max(255) }) });

/**
 * CC requires the organization; Berth takes a space without one into the
 * default organization, so clients from before organizations keep working.
 */
const CreateSpace = z.strictObject({
  name: resourceName,
  relationships: z.strictObject({ organization: ToOne }).optional(),
});

const ListSpaces = z.strictObject({
  ...pageQuery,
  names: filterList.optional(),
  guids: filterList.optional(),
  organization_guids: filterList.optional(),
  order_by: z.enum(["created_at", "-created_at", "name", "-name"]).default("created_at"),
});

export const presentSpace = (c: Context, s: Space) => ({
  guid: s.guid,
  created_at: s.createdAt,
  updated_at: s.updatedAt,
  name: s.name,
  relationships: { organization: { data: { guid: s.organizationGuid } }, quota: { data: null } },
  metadata: { labels: {}, annotations: {} },
  links: {
    self: link(c, `/v3/spaces/${s.guid}`),
    organization: link(c, `/v3/organizations/${s.organizationGuid}`),
  },
});

/** Admins and the organization's managers create spaces (CC). */
spaces.post("/", async (c) => {
  const actor = requireUser(c);
  const { name, relationships } = await parseJson(c, CreateSpace);
  const org = await getOrganization(c.var.db, relationships?.organization.data.guid ?? DEFAULT_ORGANIZATION_GUID, actor);
  if (!org) throw unprocessable("Invalid organization. Ensure the organization exists and you have access to it.");
  if (!(await actionsInOrg(c.var.db, actor, org.guid)).has("manage")) throw notAuthorized();
  const space = await createSpace(c.var.db, { name, organization: org }, actor);
  if (!space) throw unprocessable(`Name must be unique per organization`);
  return c.json(presentSpace(c, space), 201);
});

spaces.get("/", async (c) => {
  const viewer = requireUser(c);
  const q = parseQuery(c, ListSpaces);
  const page = await listSpaces(c.var.db, viewer, { names: q.names, guids: q.guids, organizationGuids: q.organization_guids, orderBy: q.order_by, page: q.page, perPage: q.per_page });
  return c.json(paginated(c.req.url, q, page.total, page.spaces.map((s) => presentSpace(c, s))));
});

spaces.get("/:guid", async (c) => {
  const viewer = requireUser(c);
  const space = await getSpace(c.var.db, c.req.param("guid"), viewer);
  if (!space) throw resourceNotFound("Space");
  return c.json(presentSpace(c, space));
});

/** Admins and the organization's managers (CC; space managers may not): everything in it goes. */
spaces.delete("/:guid", async (c) => {
  const actor = requireUser(c);
  const space = await getSpace(c.var.db, c.req.param("guid"), actor);
  if (!space) throw resourceNotFound("Space");
  if (!(await actionsInOrg(c.var.db, actor, space.organizationGuid)).has("manage")) throw notAuthorized();
  const sources = await deleteSpaceTree(c.var.db, space, actor);
  // Freed room may fit instances waiting for a cell.
  afterCommit(c, `delete space ${space.guid}`, { sources, wake: {} });
  return acceptedWithJob(c, "space.delete", actor);
});
