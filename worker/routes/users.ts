/**
 * @module `/v3/users`: admins create users (the bearer token is in the 201 body
 * and nowhere else, ever) and list them; a user may read their own record.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { requireAdmin, requireUser } from "../auth/principal";
import { createUser, getUser, listUsers, type User } from "../db/users";
import type { AppEnv } from "../env";
import { resourceNotFound, unprocessable } from "../errors";
import { link } from "../http/links";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";

export const users = new Hono<AppEnv>();

const CreateUser = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$/, "must be 1-255 letters, digits or . _ @ + - and start with a letter or digit"),
  admin: z.boolean().default(false),
});

const ListUsers = z.strictObject({
  ...pageQuery,
  usernames: filterList.optional(),
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
  origin: "berth",
  admin: u.admin,
  links: { self: link(c, `/v3/users/${u.guid}`) },
});

users.post("/", async (c) => {
  const actor = requireAdmin(c);
  const body = await parseJson(c, CreateUser);
  const created = await createUser(c.var.db, body, actor);
  if (!created) throw unprocessable(`User with name '${body.name}' already exists.`);
  return c.json({ ...presentUser(c, created.user), token: created.token }, 201);
});

users.get("/", async (c) => {
  requireAdmin(c);
  const q = parseQuery(c, ListUsers);
  const page = await listUsers(c.var.db, { names: q.usernames, orderBy: q.order_by, page: q.page, perPage: q.per_page });
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
