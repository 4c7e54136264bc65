/**
 * @module /v3/packages: docker packages (an image reference plus optional
 * registry credentials). The password is sealed before it is stored and never
 * appears in a response, an audit event or a log; responses show "***".
 */
import { Hono } from "hono";
import { z } from "zod";
import { canAccessSpace, requireUser } from "../auth/principal";
import { linkerOf } from "../auth/scope";
import { packageAad, sealSecret } from "../crypto/secrets";
import { getApp } from "../db/apps";
import { createPackage, getPackage, listPackages } from "../db/packages";
import type { AppEnv } from "../env";
import { resourceNotFound, unprocessable } from "../errors";
import { newGuid } from "../http/ids";
import { filterList } from "../http/list-query";
import { paginated } from "../http/pagination";
import { pageQuery, parseJson, parseQuery } from "../http/validate";
import { presentPackage } from "../presenters/packages";

// CC's DockerDataValidator allows image, username and password and nothing else.
const dockerData = z.strictObject({
  image: z.string().min(1).max(4096).regex(/^\S+$/, "must not contain whitespace"),
  username: z.string().min(1).max(255).optional(),
  password: z.string().min(1).max(4096).optional(),
});

const createSchema = z.strictObject({
  type: z.enum(["docker", "bits"]),
  relationships: z.strictObject({ app: z.strictObject({ data: z.strictObject({ guid: z.string().min(1).max(255) }) }) }),
  data: dockerData.optional(),
});

const listSchema = z.strictObject({
  app_guids: filterList.optional(),
  guids: filterList.optional(),
  states: filterList.optional(),
  types: filterList.optional(),
  space_guids: filterList.optional(),
  order_by: z.enum(["created_at", "-created_at"]).default("created_at"),
  ...pageQuery,
});

export const packages = new Hono<AppEnv>();

packages.post("/", async (c) => {
  const principal = requireUser(c);
  const body = await parseJson(c, createSchema);
  const app = await getApp(c.var.db, body.relationships.app.data.guid);
  if (!app || !(await canAccessSpace(c, app.spaceGuid))) {
    throw unprocessable("App is invalid. Ensure it exists and you have access to it.");
  }
  if (body.type === "bits") throw unprocessable("Cannot create bits package for a Docker app.");
  if (!body.data) throw unprocessable("data: required for a docker package (data.image)");
  const { image, username, password } = body.data;
  if ((username === undefined) !== (password === undefined)) throw unprocessable("data: username and password must be given together");
  const guid = newGuid();
  const pkg = await createPackage(c.var.db, {
    guid, appGuid: app.guid, appName: app.name, spaceGuid: app.spaceGuid, image, username: username ?? null,
    passwordEncrypted: password === undefined ? null : await sealSecret(c.env.ENCRYPTION_KEY, password, packageAad(guid)),
  }, principal);
  if (!pkg) throw unprocessable("App is invalid. Ensure it exists and you have access to it.");
  return c.json(presentPackage(pkg, linkerOf(c)), 201);
});

packages.get("/", async (c) => {
  const principal = requireUser(c);
  const q = parseQuery(c, listSchema);
  const { total, packages: rows } = await listPackages(c.var.db, {
    appGuids: q.app_guids, guids: q.guids, states: q.states, types: q.types, spaceGuids: q.space_guids,
    descending: q.order_by === "-created_at", viewer: principal, page: q.page, perPage: q.per_page,
  });
  const l = linkerOf(c);
  return c.json(paginated(c.req.url, q, total, rows.map((p) => presentPackage(p, l))));
});

packages.get("/:guid", async (c) => {
  const principal = requireUser(c);
  const pkg = await getPackage(c.var.db, c.req.param("guid"));
  if (!pkg || !(await canAccessSpace(c, pkg.spaceGuid))) throw resourceNotFound("Package");
  return c.json(presentPackage(pkg, linkerOf(c)));
});
