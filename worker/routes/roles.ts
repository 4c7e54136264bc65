/**
 * @module `/v3/roles`: CF's organization and space roles. Admins and
 * organization managers give and take organization roles; admins,
 * organization managers and space managers give and take space roles, and a
 * space role needs an organization role in that space's organization first
 * (CC's rule). Everyone sees the roles of the organizations and spaces they see.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { actionsInOrg, actionsInSpace, requireUser } from "../auth/principal";
import { isOrgRole } from "../auth/permissions";
import { getOrganization } from "../db/organizations";
import { createRole, deleteRole, getRole, hasOrgRole, hasSpaceRoleInOrg, listRoles, ROLE_TYPES, type Role } from "../db/roles";
import { getSpace } from "../db/spaces";
import { getUser, getUserByName, usersByGuid } from "../db/users";
import type { AppEnv } from "../env";
import { notAuthorized, resourceNotFound, unprocessable } from "../errors";
import { link } from "../http/links";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";
import { ORIGIN } from "../uaa/tokens";
import { acceptedWithJob } from "./jobs";
import { presentUser } from "./users";

export const roles = new Hono<AppEnv>();

const Guid = z.string().min(1).max(255);
const ToOne = z.strictObject({ data: z.strictObject({ guid: Guid }) });
/** The user by guid, or (as the cf CLI sends it) by username and origin. */
const UserRef = z.strictObject({
  data: z.union([z.strictObject({ guid: Guid }), z.strictObject({ username: z.string().min(1).max(255), origin: z.string().max(255).optional() })]),
});

const CreateRole = z.strictObject({
  type: z.enum(ROLE_TYPES),
  relationships: z.strictObject({ user: UserRef, organization: ToOne.optional(), space: ToOne.optional() }),
});

const ListRoles = z.strictObject({
  ...pageQuery,
  types: filterList.pipe(z.array(z.enum(ROLE_TYPES))).optional(),
  user_guids: filterList.optional(),
  space_guids: filterList.optional(),
  organization_guids: filterList.optional(),
  include: z.enum(["user"]).optional(),
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
  const actor = requireUser(c);
  const body = await parseJson(c, CreateRole);
  const db = c.var.db;
  const { user: userRef, organization: orgRef, space: spaceRef } = body.relationships;
  const orgRole = isOrgRole(body.type);
  if (orgRole ? !orgRef || spaceRef : !spaceRef || orgRef) {
    throw unprocessable(orgRole ? "Organization roles need relationships.organization and no space." : "Space roles need relationships.space and no organization.");
  }
  const ref = userRef.data;
  const user = "guid" in ref ? await getUser(db, ref.guid) : ref.origin === undefined || ref.origin === ORIGIN ? await getUserByName(db, ref.username) : undefined;
  if (!user) {
    throw unprocessable("guid" in ref ? "Invalid user. Ensure that the user exists and you have access to it."
      : `No user exists with the username '${ref.username}' and origin '${ref.origin ?? ORIGIN}'.`);
  }
  if (orgRef) {
    const org = await getOrganization(db, orgRef.data.guid, actor);
    if (!org) throw unprocessable("Invalid organization. Ensure that the organization exists and you have access to it.");
    if (!(await actionsInOrg(db, actor, org.guid)).has("manage")) throw notAuthorized();
    const role = await createRole(db, { type: body.type, user, organization: org }, actor);
    if (!role) throw unprocessable(`User '${user.name}' already has '${body.type}' role in organization '${org.name}'.`);
    return c.json(presentRole(c, role), 201);
  }
  const space = await getSpace(db, spaceRef!.data.guid, actor);
  if (!space) throw unprocessable("Invalid space. Ensure that the space exists and you have access to it.");
  if (!(await actionsInSpace(db, actor, space.guid)).has("manage")) throw notAuthorized();
  if (!(await hasOrgRole(db, user.guid, space.organizationGuid))) {
    throw unprocessable("Users cannot be assigned roles in a space if they do not have a role in that space's organization.");
  }
  const org = (await getOrganization(db, space.organizationGuid, { guid: actor.guid, admin: true }))!;
  const role = await createRole(db, { type: body.type, user, organization: org, space }, actor);
  if (!role) throw unprocessable(`User '${user.name}' already has '${body.type}' role in space '${space.name}'.`);
  return c.json(presentRole(c, role), 201);
});

roles.get("/", async (c) => {
  const viewer = requireUser(c);
  const q = parseQuery(c, ListRoles);
  const page = await listRoles(c.var.db, viewer, {
    types: q.types, userGuids: q.user_guids, spaceGuids: q.space_guids, organizationGuids: q.organization_guids,
    orderBy: q.order_by, page: q.page, perPage: q.per_page,
  });
  const body = paginated(c.req.url, q, page.total, page.roles.map((r) => presentRole(c, r)));
  if (q.include !== "user") return c.json(body);
  const included = await usersByGuid(c.var.db, [...new Set(page.roles.map((r) => r.userGuid))]);
  return c.json({ ...body, included: { users: included.map((u) => presentUser(c, u)) } });
});

roles.get("/:guid", async (c) => {
  const viewer = requireUser(c);
  const role = await getRole(c.var.db, c.req.param("guid"), viewer);
  if (!role) throw resourceNotFound("Role");
  return c.json(presentRole(c, role));
});

roles.delete("/:guid", async (c) => {
  const actor = requireUser(c);
  const db = c.var.db;
  const role = await getRole(db, c.req.param("guid"), actor);
  if (!role) throw resourceNotFound("Role");
  const may = role.spaceGuid ? (await actionsInSpace(db, actor, role.spaceGuid)).has("manage") : (await actionsInOrg(db, actor, role.organizationGuid)).has("manage");
  if (!may) throw notAuthorized();
  if (role.type === "organization_user" && (await hasSpaceRoleInOrg(db, role.userGuid, role.organizationGuid))) {
    throw unprocessable("Cannot delete the organization_user role of a user who has roles in spaces of that organization; remove those first.");
  }
  await deleteRole(db, role, actor);
  return acceptedWithJob(c, "role.delete", actor);
});
