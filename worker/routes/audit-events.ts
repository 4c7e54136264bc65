/**
 * @module `/v3/audit_events`: admins see every event; a developer sees the
 * events of their spaces only (events with no space, such as flag changes, are
 * admin-only). Filters as CC: types, target_guids, space_guids.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { requireUser } from "../auth/principal";
import { type AuditEvent, getAuditEvent, listAuditEvents } from "../db/audit";
import type { AppEnv } from "../env";
import { resourceNotFound } from "../errors";
import { link } from "../http/links";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseQuery } from "../http/validate";

export const audit_events = new Hono<AppEnv>();

const ListEvents = z.strictObject({
  ...pageQuery,
  types: filterList.optional(),
  target_guids: filterList.optional(),
  space_guids: filterList.optional(),
  order_by: z.enum(["created_at", "-created_at"]).default("created_at"),
});

const presentEvent = (c: Context, e: AuditEvent) => ({
  guid: e.guid,
  created_at: e.createdAt,
  updated_at: e.createdAt,
  type: e.type,
  actor: e.actor,
  target: e.target,
  data: e.data,
  space: e.spaceGuid ? { guid: e.spaceGuid } : null,
  organization: null,
  links: { self: link(c, `/v3/audit_events/${e.guid}`) },
});

audit_events.get("/", async (c) => {
  const viewer = requireUser(c);
  const q = parseQuery(c, ListEvents);
  const page = await listAuditEvents(c.var.db, viewer, {
    types: q.types, targetGuids: q.target_guids, spaceGuids: q.space_guids,
    descending: q.order_by === "-created_at", page: q.page, perPage: q.per_page,
  });
  return c.json(paginated(c.req.url, q, page.total, page.events.map((e) => presentEvent(c, e))));
});

audit_events.get("/:guid", async (c) => {
  const viewer = requireUser(c);
  const event = await getAuditEvent(c.var.db, viewer, c.req.param("guid"));
  if (!event) throw resourceNotFound("Event");
  return c.json(presentEvent(c, event));
});
