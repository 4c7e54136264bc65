/**
 * @module `/v3/feature_flags` (CCNG feature_flags_controller.rb): every user
 * reads, only admins PATCH. Flipping `diego_docker` wakes the scheduler so the
 * next convergence pass stops or restarts Docker apps (docs/architecture.md, rule 2).
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { requireAdmin, requireUser } from "../auth/principal";
import { type FeatureFlag, getFlag, isFlagName, listFlags, updateFlag } from "../db/feature-flags";
import type { AppEnv } from "../env";
import { resourceNotFound } from "../errors";
import { link } from "../http/links";
import { pageOf, paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";
import { afterCommit } from "../http/after-commit";

export const feature_flags = new Hono<AppEnv>();

const ListFlags = z.strictObject({ ...pageQuery, order_by: z.enum(["name", "-name"]).default("name") });

// app/messages/feature_flags_update_message.rb: only these keys.
const UpdateFlag = z.strictObject({
  enabled: z.boolean().optional(),
  custom_error_message: z.string().min(1).max(250).nullable().optional(),
});

const presentFlag = (c: Context, f: FeatureFlag) => ({
  name: f.name,
  enabled: f.enabled,
  updated_at: f.updatedAt,
  custom_error_message: f.customErrorMessage,
  links: { self: link(c, `/v3/feature_flags/${f.name}`) },
});

function flagName(name: string) {
  if (!isFlagName(name)) throw resourceNotFound("Feature flag");
  return name;
}

feature_flags.get("/", async (c) => {
  requireUser(c);
  const q = parseQuery(c, ListFlags);
  const flags = await listFlags(c.var.db);
  if (q.order_by === "-name") flags.reverse();
  return c.json(paginated(c.req.url, q, flags.length, pageOf(flags, q).map((f) => presentFlag(c, f))));
});

feature_flags.get("/:name", async (c) => {
  requireUser(c);
  return c.json(presentFlag(c, await getFlag(c.var.db, flagName(c.req.param("name")))));
});

feature_flags.patch("/:name", async (c) => {
  const actor = requireAdmin(c);
  const name = flagName(c.req.param("name"));
  const body = await parseJson(c, UpdateFlag);
  // An empty body changes nothing: no write, no event, updated_at untouched.
  if (body.enabled === undefined && body.custom_error_message === undefined) {
    return c.json(presentFlag(c, await getFlag(c.var.db, name)));
  }
  const { before, after } = await updateFlag(c.var.db, name, { enabled: body.enabled, customErrorMessage: body.custom_error_message }, actor);
  if (name === "diego_docker" && before.enabled !== after.enabled) afterCommit(c, "feature_flag", { wake: { full: true } });
  return c.json(presentFlag(c, after));
});
