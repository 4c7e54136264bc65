/**
 * @module The control plane Worker: a Hono app speaking the CC v3 subset, plus
 * the Durable Object classes and the cron backstop.
 */
import { connect } from "./db/connect";
import { Hono } from "hono";
import type { AppEnv } from "./env";
import { resolvePrincipal } from "./auth/principal";
import { CfError, notFoundRoute } from "./errors";
import { emptyTally, profiling } from "./http/d1-tally";
import { wakeScheduler } from "./durable/wake";
import { root } from "./routes/root";
import { uaa } from "./uaa/routes";
import { UaaError } from "./uaa/errors";
import { users } from "./routes/users";
import { organizations } from "./routes/organizations";
import { isolationSegments } from "./routes/isolation-segments";
import { spaces } from "./routes/spaces";
import { roles } from "./routes/roles";
import { jobsApi } from "./routes/jobs";
import { feature_flags } from "./routes/feature-flags";
import { audit_events } from "./routes/audit-events";
import { registry_access } from "./routes/registry-access";
import { apps } from "./routes/apps";
import { packages } from "./routes/packages";
import { processes } from "./routes/processes";
import { routesApi } from "./routes/routes";
import { cellClaimFor, cellsApi } from "./routes/cells";
import { routersApi } from "./routes/routers";
import { organizationQuotas, spaceQuotas } from "./routes/quotas";
import { routeTableApi } from "./routes/route-table";
import { appBuilds, builds } from "./routes/builds";
import { appDroplets, droplets, packageDroplets } from "./routes/droplets";
import { appLogRoutes, cellLogRoutes } from "./routes/logs";
import { appManifest, spaceManifests } from "./routes/manifests";
import { domainsApi } from "./routes/domains";
import { deploymentsApi } from "./routes/deployments";
import { logCacheApi } from "./routes/log-cache";
import { serviceRouteBindingsApi } from "./routes/service-route-bindings";

export { VersionChannel } from "./durable/version-channel";
export { Scheduler } from "./durable/scheduler";
export { Stager } from "./durable/stager";
export { AppLogs } from "./durable/app-logs";
export { ManifestApplier } from "./durable/manifest-applier";

export const app = new Hono<AppEnv>();

app.use(async (c, next) => {
  c.set("requestId", c.req.header("x-request-id") ?? crypto.randomUUID());
  const tally = profiling(c.env) ? emptyTally() : null;
  const started = Date.now();
  c.set("db", connect(c.env.DB, tally));
  // The token endpoints read their own credentials (HTTP Basic clients, refresh tokens).
  const ownCredentials = c.req.path.startsWith("/uaa/oauth/");
  c.set("principal", ownCredentials ? { kind: "anonymous" } : await resolvePrincipal(c.var.db, c.req.header("authorization"), c.env, Date.now(), cellClaimFor(c.req.method, c.req.path)));
  await next();
  c.header("x-request-id", c.var.requestId);
  if (tally) {
    const route = `${c.req.method} ${c.req.path.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, ":guid")}`;
    console.log(JSON.stringify({ component: "http", route, status: c.res.status, ms: Date.now() - started, d1: tally }));
  }
});

app.route("/", root);
app.route("/uaa", uaa);
app.route("/v3/users", users);
app.route("/v3/organizations", organizations);
app.route("/v3/isolation_segments", isolationSegments);
app.route("/v3/spaces", spaces);
app.route("/v3/spaces", spaceManifests);
app.route("/v3/roles", roles);
app.route("/v3/jobs", jobsApi);
app.route("/v3/feature_flags", feature_flags);
app.route("/v3/audit_events", audit_events);
app.route("/v3/admin/docker_registry_access", registry_access);
app.route("/v3/apps", apps);
app.route("/v3/packages", packages);
app.route("/v3/processes", processes);
// Before /v3/routes, whose /:guid would otherwise take "table".
app.route("/v3/routes/table", routeTableApi);
app.route("/v3/routes", routesApi);
app.route("/v3/builds", builds);
app.route("/v3/droplets", droplets);
app.route("/v3/cells", cellsApi);
app.route("/v3/routers", routersApi);
app.route("/v3/organization_quotas", organizationQuotas);
app.route("/v3/space_quotas", spaceQuotas);
app.route("/v3/apps", appBuilds);
app.route("/v3/apps", appDroplets);
app.route("/v3/packages", packageDroplets);
app.route("/v3/apps", appLogRoutes);
app.route("/v3/cells", cellLogRoutes);
app.route("/v3/apps", appManifest);
app.route("/v3/domains", domainsApi);
app.route("/v3/deployments", deploymentsApi);
app.route("/v3/service_route_bindings", serviceRouteBindingsApi);
app.route("/", logCacheApi);

app.notFound(() => {
  throw notFoundRoute();
});

app.onError((err, c) => {
  if (err instanceof CfError) return c.json(err.toJSON(), err.status);
  if (err instanceof UaaError) return c.json(err.toJSON(), err.status);
  // Never leak internals: log with the request id, answer CC's UnknownError.
  console.error(JSON.stringify({ level: "error", requestId: c.var.requestId, msg: err.message, stack: err.stack }));
  return c.json({ errors: [{ code: 10001, title: "CF-UnknownError", detail: "An unknown error occurred." }] }, 500);
});

export default {
  fetch: app.fetch,
  async scheduled(_controller: ScheduledController, env: AppEnv["Bindings"]) {
    // Backstop only: a full pass, in case an alarm was lost.
    await wakeScheduler(env, "cron", { full: true });
  },
} satisfies ExportedHandler<AppEnv["Bindings"]>;
