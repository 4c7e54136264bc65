/**
 * @module `/v3/users`: admins create robot users (the bearer token is in the 201
 * body and nowhere else, ever), register users made through UAA's SCIM
 * (`{guid}`, as `cf create-user` sends), list them and delete their roles; a
 * user may read their own record.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { requireAdmin, requireUser } from "../auth/principal";
import { deleteUserRoles } from "../db/roles";
import { ADMIN_USER, createUser, getUser, listUsers, type User } from "../db/users";
import { ORIGIN } from "../uaa/tokens";
import { acceptedWithJob } from "./jobs";
import type { AppEnv } from "../env";
import { resourceNotFound, unprocessable } from "../errors";
import { link } from "../http/links";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";

export const users = new Hono<AppEnv>();

/** Berth's form `{name, admin}` makes a robot with a token; CC's `{guid}` registers a UAA user (they share one table). */
const CreateUser = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$/, "must be 1-255 letters, digits or . _ @ + - and start with a letter or digit").optional(),
  admin: z.boolean().default(false),
  guid: z.string().min(1).max(255).optional(),
}).refine((b) => (b.name === undefined) !== (b.guid === undefined), { message: "give a name (a new user) or a guid (a UAA user), not both", path: ["name"] });

const ListUsers = z.strictObject({
  ...pageQuery,
  usernames: filterList.optional(),
  origins: filterList.optional(),
  order_by: z.enum(["created_at", "-created_at", "username", "-username"]).default("created_at"),
});

export const presentUser = (c: Context, u: User) => ({
  guid: u.guid,
  created_at: u.createdAt,
  updated_at: u.updatedAt,
  username: u.name,
  // `name` too: it is the field POST takes, and what clients look users up by.
  name: u.name,
  presentation_name: u.name,
  origin: ORIGIN,
  admin: u.admin,
  links: { self: link(c, `/v3/users/${u.guid}`) },
});

users.post("/", async (c) => {
  const actor = requireAdmin(c);
  const body = await parseJson(c, CreateUser);
  if (body.guid !== undefined) {
    const known = await getUser(c.var.db, body.guid);
    if (!known) throw unprocessable(`No UAA user has guid '${body.guid}': create it with POST /uaa/Users first.`);
    return c.json(presentUser(c, known), 201);
  }
  const name = body.name!;
  if (name === ADMIN_USER.name) throw unprocessable(`User with name '${name}' already exists.`);
  const created = await createUser(c.var.db, { name, admin: body.admin }, actor);
  if (!created) throw unprocessable(`User with name '${name}' already exists.`);
  return c.json({ ...presentUser(c, created.user), token: created.token }, 201);
});

users.get("/", async (c) => {
  const viewer = requireUser(c);
  const q = parseQuery(c, ListUsers);
  // Every Berth user has UAA's origin; asking for others finds none.
  if (q.origins && !q.origins.includes(ORIGIN)) return c.json(paginated(c.req.url, q, 0, []));
  const page = await listUsers(c.var.db, { viewer, names: q.usernames, orderBy: q.order_by, page: q.page, perPage: q.per_page });
  return c.json(paginated(c.req.url, q, page.total, page.users.map((u) => presentUser(c, u))));
});

users.get("/:guid", async (c) => {
  const p = requireUser(c);
  const guid = c.req.param("guid");
  // Others' records are invisible, not forbidden (CC answers 404).
  const user = p.admin || p.guid === guid ? await getUser(c.var.db, guid) : undefined;
  if (!user) throw resourceNotFound("User");
  return c.json(presentUser(c, user));
});

/** CC's delete: the user's roles go; the identity itself is UAA's to delete (DELETE /uaa/Users/:id, as `cf delete-user` does next). */
users.delete("/:guid", async (c) => {
  const actor = requireAdmin(c);
  const user = await getUser(c.var.db, c.req.param("guid"));
  if (!user) throw resourceNotFound("User");
  if (user.guid === ADMIN_USER.guid) throw unprocessable("The admin user cannot be deleted.");
  await deleteUserRoles(c.var.db, user, actor);
  return acceptedWithJob(c, "user.delete", actor);
});
