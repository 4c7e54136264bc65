/**
 * @module Public discovery documents, as CC serves them: `GET /` (root links),
 * `GET /v3` (one link per v3 resource) and `GET /v3/info` (what this platform is).
 * Berth adds `apps_domain` to both documents so a client (`berth push`) can
 * build the default route `<app>.<apps_domain>` without another call, and
 * `apps_scheme` and `apps_port` (null: the scheme's own) so it prints the URL
 * that reaches the apps (`http://demo.apps.localhost:8080`, the local router).
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

/**
 * The CC v3 API level Berth's subset follows, as the cf CLI reads it: above its
 * minimum (3.63.0, or it warns), below the levels that switch on what Berth
 * does not serve (3.104.0: HTTP/2 routes).
 */
export const CC_API_VERSION = "3.100.0";

export const root = new Hono<AppEnv>();

/** Where apps answer: APPS_SCHEME (default http) and APPS_PORT (default the scheme's own). */
export function appsUrl(env: Pick<AppEnv["Bindings"], "APPS_DOMAIN" | "APPS_SCHEME" | "APPS_PORT">) {
  const port = env.APPS_PORT && /^\d{1,5}$/.test(env.APPS_PORT) && Number(env.APPS_PORT) <= 65535 ? Number(env.APPS_PORT) : null;
  return { apps_domain: env.APPS_DOMAIN, apps_scheme: env.APPS_SCHEME === "https" ? "https" : "http", apps_port: port };
}

root.get("/", (c) =>
  c.json({
    name: "berth",
    version,
    ...appsUrl(c.env),
    links: {
      self: link(c, ""),
      cloud_controller_v3: { ...link(c, "/v3"), meta: { version: CC_API_VERSION } },
      info: link(c, "/v3/info"),
      // The UAA-compatible endpoints live in this Worker (worker/uaa/).
      login: link(c, "/uaa"),
      uaa: link(c, "/uaa"),
      // Log Cache's read API over the app log store (routes/log-cache.ts).
      log_cache: link(c, ""),
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
    ...appsUrl(c.env),
    custom: {},
    links: { self: link(c, "/v3/info"), support: null },
  }),
);
