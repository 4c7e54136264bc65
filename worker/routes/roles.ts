/**
 * @module `/v3/roles`: admins make a user a `space_developer` of a space.
 * Everyone sees the roles of the spaces they can see.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { requireAdmin, requireUser } from "../auth/principal";
import { createRole, getRole, listRoles, ROLE_TYPES, type Role } from "../db/roles";
import { getSpace } from "../db/spaces";
import { getUser } from "../db/users";
import type { AppEnv } from "../env";
import { resourceNotFound, unprocessable } from "../errors";
import { link } from "../http/links";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";

export const roles = new Hono<AppEnv>();

const ToOne = z.strictObject({ data: z.strictObject({ guid: z.string().min(1).max(255) }) });

const CreateRole = z.strictObject({
  type: z.enum(ROLE_TYPES),
  relationships: z.strictObject({ user: ToOne, space: ToOne }),
});

const ListRoles = z.strictObject({
  ...pageQuery,
  types: filterList.pipe(z.array(z.enum(ROLE_TYPES))).optional(),
  user_guids: filterList.optional(),
  space_guids: filterList.optional(),
  order_by: z.enum(["created_at", "-created_at"]).default("created_at"),
});

const presentRole = (c: Context, r: Role) => ({
  guid: r.guid,
  created_at: r.createdAt,
  updated_at: r.updatedAt,
  type: r.type,
  relationships: {
    user: { data: { guid: r.userGuid } },
    space: { data: r.spaceGuid ? { guid: r.spaceGuid } : null },
    organization: { data: r.spaceGuid ? null : { guid: r.organizationGuid } },
  },
  links: {
    self: link(c, `/v3/roles/${r.guid}`),
    user: link(c, `/v3/users/${r.userGuid}`),
    ...(r.spaceGuid ? { space: link(c, `/v3/spaces/${r.spaceGuid}`) } : { organization: link(c, `/v3/organizations/${r.organizationGuid}`) }),
  },
});

roles.post("/", async (c) => {
  const actor = requireAdmin(c);
  const body = await parseJson(c, CreateRole);
  const db = c.var.db;
  const [user, space] = await Promise.all([
    getUser(db, body.relationships.user.data.guid),
    getSpace(db, body.relationships.space.data.guid, actor),
  ]);
  // CC's wording for relationships that do not resolve.
  if (!user) throw unprocessable("Invalid user. Ensure that the user exists and you have access to it.");
  if (!space) throw unprocessable("Invalid space. Ensure that the space exists and you have access to it.");
  const role = await createRole(db, { type: body.type, user: { guid: user.guid, name: user.name }, space }, actor);
  if (!role) throw unprocessable(`User '${user.name}' already has '${body.type}' role in space '${space.name}'.`);
  return c.json(presentRole(c, role), 201);
});

roles.get("/", async (c) => {
  const viewer = requireUser(c);
  const q = parseQuery(c, ListRoles);
  const page = await listRoles(c.var.db, viewer, {
    types: q.types, userGuids: q.user_guids, spaceGuids: q.space_guids, orderBy: q.order_by, page: q.page, perPage: q.per_page,
  });
  return c.json(paginated(c.req.url, q, page.total, page.roles.map((r) => presentRole(c, r))));
});

roles.get("/:guid", async (c) => {
  const viewer = requireUser(c);
  const role = await getRole(c.var.db, c.req.param("guid"), viewer);
  if (!role) throw resourceNotFound("Role");
  return c.json(presentRole(c, role));
});
