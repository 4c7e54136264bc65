/**
 * @module The control plane's D1 schema (drizzle). `npm run db:generate` turns
 * changes here into SQL under migrations/, applied by `wrangler d1 migrations apply`.
 *
 * D1 has no interactive transactions: multi-row writes go through `db.batch()`,
 * and counters/versions are bumped with single conditional UPDATE statements.
 */
import { sql } from "drizzle-orm";
import { type AnySQLiteColumn, index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { ACTUAL_STATES, CELL_STATES, PRESENCES } from "../../shared/convergence/model";

const timestamps = {
  createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%SZ','now'))`),
  updatedAt: text("updated_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%SZ','now'))`),
};

/**
 * People and robots. A user signs in with a password (stored only as a PBKDF2
 * hash, auth/passwords.ts), holds an opaque bearer token (only its SHA-256 is
 * kept), or both.
 */
export const users = sqliteTable("users", {
  guid: text("guid").primaryKey(),
  name: text("name").notNull().unique(),
  admin: integer("admin", { mode: "boolean" }).notNull().default(false),
  tokenHash: text("token_hash").unique(),
  passwordHash: text("password_hash"),
  ...timestamps,
});

/** CF's organizations: spaces belong to one; names are unique across the platform. */
export const organizations = sqliteTable("organizations", {
  guid: text("guid").primaryKey(),
  name: text("name").notNull().unique(),
  suspended: integer("suspended", { mode: "boolean" }).notNull().default(false),
  /** Its organization quota; null means the default one (CC: every organization has exactly one). */
  quotaGuid: text("quota_guid"),
  ...timestamps,
});

/**
 * Quota definitions, CC's organization_quotas and space_quotas in one table:
 * a limit of null is unlimited. A space quota belongs to one organization and
 * applies to the spaces that name it.
 */
export const quotas = sqliteTable(
  "quotas",
  {
    guid: text("guid").primaryKey(),
    scope: text("scope", { enum: ["organization", "space"] }).notNull(),
    name: text("name").notNull(),
    /** A space quota's organization; "" for organization quotas (so names stay unique: SQLite's NULLs never clash). */
    organizationGuid: text("organization_guid").notNull().default(""),
    totalMemoryInMb: integer("total_memory_in_mb"),
    perProcessMemoryInMb: integer("per_process_memory_in_mb"),
    totalInstances: integer("total_instances"),
    logRateLimitInBytesPerSecond: integer("log_rate_limit_in_bytes_per_second"),
    totalRoutes: integer("total_routes"),
    ...timestamps,
  },
  (t) => [uniqueIndex("quotas_scope_org_name").on(t.scope, t.organizationGuid, t.name)],
);

/** Spaces scope apps and access; a space's name is unique within its organization (CC's rule). */
export const spaces = sqliteTable(
  "spaces",
  {
    guid: text("guid").primaryKey(),
    name: text("name").notNull(),
    organizationGuid: text("organization_guid").notNull().references(() => organizations.guid),
    /** Its space quota, if any: a space is limited by it and by its organization's quota. */
    quotaGuid: text("quota_guid"),
    ...timestamps,
  },
  (t) => [uniqueIndex("spaces_org_name").on(t.organizationGuid, t.name), index("spaces_org").on(t.organizationGuid)],
);

export const ORGANIZATION_ROLE_TYPES = [
  "organization_user", "organization_auditor", "organization_manager", "organization_billing_manager",
] as const;
export const SPACE_ROLE_TYPES = ["space_developer", "space_auditor", "space_manager", "space_supporter"] as const;

/**
 * CF's roles. An organization role has no space; a space role names its space and
 * (denormalized, spaces never move) that space's organization, so "everything in
 * this organization" is one indexed lookup.
 */
export const roles = sqliteTable(
  "roles",
  {
    guid: text("guid").primaryKey(),
    type: text("type", { enum: [...ORGANIZATION_ROLE_TYPES, ...SPACE_ROLE_TYPES] }).notNull(),
    userGuid: text("user_guid").notNull().references(() => users.guid, { onDelete: "cascade" }),
    organizationGuid: text("organization_guid").notNull().references(() => organizations.guid, { onDelete: "cascade" }),
    spaceGuid: text("space_guid").references(() => spaces.guid, { onDelete: "cascade" }),
    ...timestamps,
  },
  (t) => [
    uniqueIndex("roles_user_space_type").on(t.userGuid, t.spaceGuid, t.type),
    // Space roles are unique by the index above; NULLs are distinct there, so org roles need their own.
    uniqueIndex("roles_user_org_type").on(t.userGuid, t.organizationGuid, t.type).where(sql`space_guid IS NULL`),
    index("roles_org").on(t.organizationGuid),
    index("roles_space").on(t.spaceGuid),
  ],
);

/**
 * One row per sign-in (password grant): the refresh token's jti is its guid and
 * every access token from it names it (`sid`). Deleting the row (logout, a new
 * password, a deleted user) revokes the refresh token and its access tokens.
 */
export const sessions = sqliteTable(
  "sessions",
  {
    guid: text("guid").primaryKey(),
    userGuid: text("user_guid").notNull().references(() => users.guid, { onDelete: "cascade" }),
    clientId: text("client_id").notNull(),
    /** Epoch ms after which the refresh token is refused. */
    expiresAt: integer("expires_at").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("sessions_user").on(t.userGuid)],
);

/** Failed sign-ins per user name in the current window, for UAA-style lockout. */
export const loginFailures = sqliteTable("login_failures", {
  username: text("username").primaryKey(),
  failures: integer("failures").notNull(),
  /** Epoch ms of the window's first failure. */
  windowStart: integer("window_start").notNull(),
});

/**
 * CC's asynchronous jobs (`/v3/jobs`): deletes answer 202 with one, as the cf CLI
 * expects, and it reports how the work went. Berth does such work before
 * answering, so a job is born COMPLETE or FAILED.
 */
export const jobs = sqliteTable("jobs", {
  guid: text("guid").primaryKey(),
  operation: text("operation").notNull(),
  state: text("state", { enum: ["PROCESSING", "COMPLETE", "FAILED"] }).notNull(),
  errors: text("errors", { mode: "json" }).$type<{ code: number; title: string; detail: string }[]>().notNull(),
  /** Who may read it (and admins). */
  userGuid: text("user_guid").notNull(),
  ...timestamps,
});

/** Only flags an operator has set have a row; the rest take CF's defaults. */
export const featureFlags = sqliteTable("feature_flags", {
  name: text("name").primaryKey(),
  enabled: integer("enabled", { mode: "boolean" }).notNull(),
  customErrorMessage: text("custom_error_message"),
  updatedAt: text("updated_at").notNull(),
});

/** CF-style audit events (flag changes, app lifecycle, crashes, placements). */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    guid: text("guid").primaryKey(),
    type: text("type").notNull(),
    actorGuid: text("actor_guid").notNull(),
    actorType: text("actor_type").notNull(),
    actorName: text("actor_name").notNull(),
    targetGuid: text("target_guid").notNull(),
    targetType: text("target_type").notNull(),
    targetName: text("target_name").notNull(),
    spaceGuid: text("space_guid"),
    data: text("data", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("audit_events_target").on(t.targetGuid), index("audit_events_space").on(t.spaceGuid)],
);

/** Singleton row (id = 1): admin registry access, versioned so cells notice edits. */
export const registryAccess = sqliteTable("registry_access", {
  id: integer("id").primaryKey(),
  trustedCaCertificates: text("trusted_ca_certificates", { mode: "json" }).$type<string[]>().notNull(),
  insecureRegistries: text("insecure_registries", { mode: "json" }).$type<string[]>().notNull(),
  cellOnlyRegistries: text("cell_only_registries", { mode: "json" }).$type<string[]>().notNull(),
  version: integer("version").notNull(),
  updatedAt: text("updated_at").notNull(),
});

export const apps = sqliteTable(
  "apps",
  {
    guid: text("guid").primaryKey(),
    name: text("name").notNull(),
    spaceGuid: text("space_guid").notNull().references(() => spaces.guid),
    state: text("state", { enum: ["STARTED", "STOPPED"] }).notNull(),
    lifecycleType: text("lifecycle_type", { enum: ["docker"] }).notNull(),
    currentDropletGuid: text("current_droplet_guid"),
    /** JSON object; edited with SQLite json_patch in one statement so parallel PATCHes merge. */
    environmentVariables: text("environment_variables").notNull().default("{}"),
    ...timestamps,
  },
  (t) => [uniqueIndex("apps_space_name").on(t.spaceGuid, t.name)],
);

export const packages = sqliteTable("packages", {
  guid: text("guid").primaryKey(),
  appGuid: text("app_guid").notNull().references(() => apps.guid, { onDelete: "cascade" }),
  type: text("type", { enum: ["docker"] }).notNull(),
  state: text("state").notNull(),
  image: text("image").notNull(),
  username: text("username"),
  /** AES-GCM ciphertext (`v1:<keyId>:<b64(iv‖ct)>`), never returned. */
  passwordEncrypted: text("password_encrypted"),
  ...timestamps,
});

export const builds = sqliteTable("builds", {
  guid: text("guid").primaryKey(),
  appGuid: text("app_guid").notNull().references(() => apps.guid, { onDelete: "cascade" }),
  packageGuid: text("package_guid").notNull(),
  state: text("state", { enum: ["STAGING", "STAGED", "FAILED"] }).notNull(),
  error: text("error"),
  dropletGuid: text("droplet_guid"),
  /** "worker" or "cell": where the image metadata is resolved (docs/architecture.md § Control plane). */
  stagingLocation: text("staging_location").notNull().default("worker"),
  stagingCellGuid: text("staging_cell_guid"),
  createdByGuid: text("created_by_guid").notNull(),
  ...timestamps,
});

export const droplets = sqliteTable("droplets", {
  guid: text("guid").primaryKey(),
  appGuid: text("app_guid").notNull().references(() => apps.guid, { onDelete: "cascade" }),
  buildGuid: text("build_guid"),
  packageGuid: text("package_guid"),
  state: text("state").notNull(),
  /** The image as the user named it, pinned: `ref@manifest_digest` is what cells pull. */
  image: text("image").notNull(),
  manifestDigest: text("manifest_digest").notNull(),
  indexDigest: text("index_digest"),
  /** CF's execution_metadata: a JSON string (cmd, entrypoint, workdir, ports, user). */
  executionMetadata: text("execution_metadata").notNull(),
  processTypes: text("process_types", { mode: "json" }).$type<Record<string, string>>().notNull(),
  /** Everything a cell needs to run it: layers, config env, ports (shared/staging types). */
  imageSpec: text("image_spec", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
  ...timestamps,
});

export const processes = sqliteTable(
  "processes",
  {
    guid: text("guid").primaryKey(),
    appGuid: text("app_guid").notNull().references(() => apps.guid, { onDelete: "cascade" }),
    type: text("type").notNull(),
    /** Changes whenever running instances must be recreated (CF's process version). */
    version: text("version").notNull(),
    command: text("command"),
    user: text("user"),
    instances: integer("instances").notNull(),
    memoryInMb: integer("memory_in_mb").notNull(),
    diskInMb: integer("disk_in_mb").notNull(),
    logRateLimitInBytesPerSecond: integer("log_rate_limit_in_bytes_per_second").notNull().default(-1),
    healthCheckType: text("health_check_type", { enum: ["port", "process", "http"] }).notNull(),
    healthCheckTimeout: integer("health_check_timeout"),
    healthCheckInvocationTimeout: integer("health_check_invocation_timeout"),
    healthCheckInterval: integer("health_check_interval"),
    healthCheckEndpoint: text("health_check_endpoint"),
    ...timestamps,
  },
  // Not unique: during a rolling deployment an app has two web processes (CC's deploying process); the newest is "the" web process.
  (t) => [index("processes_app_type").on(t.appGuid, t.type)],
);

/**
 * CC's deployments: rolling replacement of an app's web process. `state` is
 * CC's internal one (DEPLOYING, CANCELING, DEPLOYED, CANCELED); the API shows
 * `status_value`/`status_reason`. worker/deployments/ steps it from the scheduler.
 */
export const deployments = sqliteTable(
  "deployments",
  {
    guid: text("guid").primaryKey(),
    appGuid: text("app_guid").notNull().references(() => apps.guid, { onDelete: "cascade" }),
    state: text("state", { enum: ["DEPLOYING", "CANCELING", "DEPLOYED", "CANCELED"] }).notNull(),
    statusValue: text("status_value", { enum: ["ACTIVE", "FINALIZED"] }).notNull(),
    statusReason: text("status_reason", { enum: ["DEPLOYING", "CANCELING", "DEPLOYED", "CANCELED", "SUPERSEDED"] }).notNull(),
    strategy: text("strategy").notNull().default("rolling"),
    dropletGuid: text("droplet_guid"),
    previousDropletGuid: text("previous_droplet_guid"),
    /** The web process it brings up (null for a deployment of a stopped app, which just starts it). */
    deployingProcessGuid: text("deploying_process_guid"),
    /** Processes it created, as CC's new_processes ([{guid, type}]), kept after they are gone. */
    newProcesses: text("new_processes", { mode: "json" }).$type<{ guid: string; type: string }[]>().notNull(),
    /** CC's original_web_process_instance_count: the web instances it rolls to. */
    originalInstances: integer("original_instances").notNull(),
    maxInFlight: integer("max_in_flight").notNull().default(1),
    lastHealthyAt: text("last_healthy_at"),
    statusUpdatedAt: text("status_updated_at").notNull(),
    error: text("error"),
    ...timestamps,
  },
  (t) => [index("deployments_app").on(t.appGuid), index("deployments_status").on(t.statusValue)],
);

export const routes = sqliteTable("routes", {
  guid: text("guid").primaryKey(),
  host: text("host").notNull(),
  domain: text("domain").notNull(),
  /** "" or a path the router matches by prefix, segment by segment (CC's route path). */
  path: text("path").notNull().default(""),
  spaceGuid: text("space_guid").notNull().references(() => spaces.guid),
  ...timestamps,
}, (t) => [uniqueIndex("routes_host_domain_path").on(t.host, t.domain, t.path)]);

export const routeDestinations = sqliteTable("route_destinations", {
  guid: text("guid").primaryKey(),
  routeGuid: text("route_guid").notNull().references(() => routes.guid, { onDelete: "cascade" }),
  appGuid: text("app_guid").notNull().references(() => apps.guid, { onDelete: "cascade" }),
  processType: text("process_type").notNull().default("web"),
  port: integer("port"),
  ...timestamps,
}, (t) => [uniqueIndex("route_destinations_unique").on(t.routeGuid, t.appGuid, t.processType)]);

/** One-time tokens an admin makes for enrolling a cell or a router. */
export const enrollmentTokens = sqliteTable("enrollment_tokens", {
  tokenHash: text("token_hash").primaryKey(),
  /** How admins name a token to list or revoke it (the token itself is shown once). */
  guid: text("guid").unique(),
  kind: text("kind", { enum: ["cell", "router"] }).notNull(),
  usedAt: text("used_at"),
  createdAt: text("created_at").notNull(),
  /** After this (ISO time) the token no longer enrolls anything. */
  expiresAt: text("expires_at"),
  revokedAt: text("revoked_at"),
});

export const cells = sqliteTable("cells", {
  guid: text("guid").primaryKey(),
  name: text("name").notNull(),
  zone: text("zone").notNull(),
  address: text("address").notNull(),
  tokenHash: text("token_hash").notNull().unique(),
  capacity: text("capacity", { mode: "json" }).$type<{ memory_mb: number; disk_mb: number; containers: number }>().notNull(),
  free: text("free", { mode: "json" }).$type<{ memory_mb: number; disk_mb: number; containers: number }>(),
  cachedLayers: text("cached_layers", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
  state: text("state", { enum: CELL_STATES }).notNull(),
  lastHeartbeatAt: integer("last_heartbeat_at"),
  /**
   * Each listed instance's usage (cpu, mem, disk) from the cell's last heartbeat that listed them, and when that beat
   * came: one row written per beat, not one per instance (CF keeps container metrics apart from actual LRPs too).
   */
  instanceUsage: text("instance_usage", { mode: "json" }).$type<Record<string, Record<string, number>>>(),
  usageReportedAt: integer("usage_reported_at"),
  /** Bumped whenever the cell's desired set changes; the long-poll compares against it. */
  desiredVersion: integer("desired_version").notNull().default(0),
  ...timestamps,
});

export const routers = sqliteTable("routers", {
  guid: text("guid").primaryKey(),
  name: text("name").notNull(),
  tokenHash: text("token_hash").notNull().unique(),
  ...timestamps,
});

/**
 * What an instance takes on its cell, from its spec. Indexed with the cell and
 * state (below), so a pass sums each cell's load from the index instead of
 * parsing every spec of the fleet; queries must use these very expressions.
 */
export const specMemoryMb = (spec: AnySQLiteColumn) => sql<number>`json_extract(${spec}, '$.memory_mb')`;
export const specDiskMb = (spec: AnySQLiteColumn) => sql<number>`json_extract(${spec}, '$.disk_mb')`;

/**
 * Actual LRPs (Diego's term): one row per instance the scheduler placed. The spec
 * is the snapshot taken at start/restart/scale-up; the rest is what cells report.
 */
export const instances = sqliteTable(
  "instances",
  {
    instanceGuid: text("instance_guid").primaryKey(),
    processGuid: text("process_guid").notNull().references(() => processes.guid, { onDelete: "cascade" }),
    appGuid: text("app_guid").notNull(),
    index: integer("index").notNull(),
    processVersion: text("process_version").notNull(),
    spec: text("spec", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    cellGuid: text("cell_guid"),
    state: text("state", { enum: ACTUAL_STATES }).notNull(),
    presence: text("presence", { enum: PRESENCES }).notNull().default("ORDINARY"),
    since: integer("since").notNull(),
    hostPort: integer("host_port"),
    crashCount: integer("crash_count").notNull().default(0),
    crashReason: text("crash_reason"),
    placementError: text("placement_error"),
    /**
     * Retired (usage is on the cell's row): nothing reads or writes them, but they stay until the next release's
     * migration, so the Worker still running while this release's migrations apply keeps working (docs/deploy.md).
     */
    retiredUsage: text("usage", { mode: "json" }).$type<Record<string, number>>(),
    retiredLastReportAt: integer("last_report_at"),
  },
  (t) => [
    index("instances_process").on(t.processGuid), index("instances_cell").on(t.cellGuid), index("instances_app").on(t.appGuid),
    // Each pass's fleet-wide reads: every cell's load, and what may come due (by state, oldest first).
    index("instances_cell_load").on(t.cellGuid, t.state, specMemoryMb(t.spec), specDiskMb(t.spec)),
    index("instances_state_since").on(t.state, t.since),
  ],
);

/** Monotonic counters (e.g. the route table version routers long-poll on). */
export const counters = sqliteTable("counters", {
  name: text("name").primaryKey(),
  value: integer("value").notNull(),
});

