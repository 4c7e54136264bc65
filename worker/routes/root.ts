/**
 * @module Public discovery documents, as CC serves them: `GET /` (root links),
 * `GET /v3` (one link per v3 resource) and `GET /v3/info` (what this platform is).
 * Berth adds `apps_domain` to both documents so a client (`berth push`) can
 * build the default route `<app>.<apps_domain>` without another call.
 */
import { Hono } from "hono";
import { version } from "../../package.json";
import type { AppEnv } from "../env";
import { link } from "../http/links";

/** The v3 resources this control plane serves, as listed by `GET /v3`. */
const V3_RESOURCES = [
  "apps", "audit_events", "builds", "cells", "droplets", "feature_flags", "info",
  "organizations", "packages", "processes", "roles", "routes", "spaces", "users",
] as const;

export const root = new Hono<AppEnv>();

root.get("/", (c) =>
  c.json({
    name: "berth",
    version,
    apps_domain: c.env.APPS_DOMAIN,
    links: {
      self: link(c, ""),
      cloud_controller_v3: { ...link(c, "/v3"), meta: { version } },
      info: link(c, "/v3/info"),
      docker_registry_access: link(c, "/v3/admin/docker_registry_access"),
    },
  }),
);

root.get("/v3", (c) =>
  c.json({
    links: {
      self: link(c, "/v3"),
      ...Object.fromEntries(V3_RESOURCES.map((r) => [r, link(c, `/v3/${r}`)])),
    },
  }),
);

root.get("/v3/info", (c) =>
  c.json({
    name: "berth",
    build: "",
    version,
    description: "Docker-image apps on your own Linux cells, with a serverless control plane",
    cli_version: { minimum: version, recommended: version },
    apps_domain: c.env.APPS_DOMAIN,
    custom: {},
    links: { self: link(c, "/v3/info"), support: null },
  }),
);
