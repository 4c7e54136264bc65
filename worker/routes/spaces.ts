/**
 * @module `/v3/spaces`: admins create spaces and see all of them; a developer
 * sees only the spaces they are a member of (others answer 404, as CC does).
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { requireAdmin, requireUser } from "../auth/principal";
import { createSpace, getSpace, listSpaces, type Space } from "../db/spaces";
import type { AppEnv } from "../env";
import { resourceNotFound, unprocessable } from "../errors";
import { link } from "../http/links";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";

export const spaces = new Hono<AppEnv>();

/** CC's space name rule is 1..255 characters; Berth also keeps them printable and trimmed. */
const CreateSpace = z.strictObject({
  name: z.string().min(1).max(255).regex(/^\S(.*\S)?$/, "must not start or end with whitespace").regex(/^[^\p{Cc}]*$/u, "must not contain control characters"),
});

const ListSpaces = z.strictObject({
  ...pageQuery,
  names: filterList.optional(),
  guids: filterList.optional(),
  order_by: z.enum(["created_at", "-created_at", "name", "-name"]).default("created_at"),
});

export const presentSpace = (c: Context, s: Space) => ({
  guid: s.guid,
  created_at: s.createdAt,
  updated_at: s.updatedAt,
  name: s.name,
  relationships: {},
  links: { self: link(c, `/v3/spaces/${s.guid}`) },
});

spaces.post("/", async (c) => {
  const actor = requireAdmin(c);
  const { name } = await parseJson(c, CreateSpace);
  const space = await createSpace(c.var.db, name, actor);
  if (!space) throw unprocessable(`Space with name '${name}' already exists.`);
  return c.json(presentSpace(c, space), 201);
});

spaces.get("/", async (c) => {
  const viewer = requireUser(c);
  const q = parseQuery(c, ListSpaces);
  const page = await listSpaces(c.var.db, viewer, { names: q.names, guids: q.guids, orderBy: q.order_by, page: q.page, perPage: q.per_page });
  return c.json(paginated(c.req.url, q, page.total, page.spaces.map((s) => presentSpace(c, s))));
});

spaces.get("/:guid", async (c) => {
  const viewer = requireUser(c);
  const space = await getSpace(c.var.db, c.req.param("guid"), viewer);
  if (!space) throw resourceNotFound("Space");
  return c.json(presentSpace(c, space));
});
