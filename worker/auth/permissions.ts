/**
 * @module CF's role permission matrix, as pure decisions. What each role may do
 * in a space and in an organization, and which action each endpoint needs,
 * live here and nowhere else; the guards (auth/principal.ts) load the caller's
 * roles and ask. Anyone who cannot `read` a space or organization gets 404 from
 * its endpoints (CC never confirms what you cannot see); anyone who can read it
 * but may not do the action gets 403 CF-NotAuthorized.
 */
import type { ORGANIZATION_ROLE_TYPES, SPACE_ROLE_TYPES } from "../db/schema";

export type RoleType = (typeof ORGANIZATION_ROLE_TYPES)[number] | (typeof SPACE_ROLE_TYPES)[number];

/**
 * - read: see the space and everything in it (apps, processes, routes, packages, droplets, logs, events)
 * - develop: create, change and delete apps, packages, builds, droplets, routes and env vars
 * - operate: start, stop, restart, scale and change processes (space_supporter's share of develop)
 * - read_env: read an app's environment variables (secrets live there)
 * - manage: give and take space roles, rename or delete the space
 */
export type SpaceAction = "read" | "develop" | "operate" | "read_env" | "manage";
/** read: see the organization; manage: its spaces and organization roles. */
export type OrgAction = "read" | "manage";

/** CC's matrix for a space: the space's own roles, and the organization roles that reach into it. */
const SPACE_MATRIX: Record<RoleType, readonly SpaceAction[]> = {
  space_developer: ["read", "develop", "operate", "read_env"],
  space_supporter: ["read", "operate"],
  space_manager: ["read", "manage"],
  space_auditor: ["read"],
  // Org managers see and manage every space of their organization but do not develop in it.
  organization_manager: ["read", "manage"],
  organization_user: [],
  organization_auditor: [],
  organization_billing_manager: [],
};

/** Any role in an organization or in one of its spaces lets you see the organization. */
const ORG_MATRIX: Record<RoleType, readonly OrgAction[]> = {
  organization_manager: ["read", "manage"],
  organization_user: ["read"],
  organization_auditor: ["read"],
  organization_billing_manager: ["read"],
  space_developer: ["read"],
  space_supporter: ["read"],
  space_manager: ["read"],
  space_auditor: ["read"],
};

export const ALL_SPACE_ACTIONS: readonly SpaceAction[] = ["read", "develop", "operate", "read_env", "manage"];

/** What the holder of `types` (their roles in the space and its organization) may do there. */
export function spaceActions(admin: boolean, types: readonly RoleType[]): Set<SpaceAction> {
  return new Set(admin ? ALL_SPACE_ACTIONS : types.flatMap((t) => SPACE_MATRIX[t]));
}

export function orgActions(admin: boolean, types: readonly RoleType[]): Set<OrgAction> {
  return new Set(admin ? (["read", "manage"] as const) : types.flatMap((t) => ORG_MATRIX[t]));
}

/** Which space roles an organization role lets a user be given: CC requires one first. */
export const isOrgRole = (t: RoleType): boolean => t.startsWith("organization_");

/**
 * The action each space-scoped endpoint needs, by method and route pattern.
 * Reads need `read`; a write not listed needs `develop` (fail closed).
 */
const ENDPOINT_ACTIONS: Record<string, SpaceAction> = {
  "GET /v3/apps/:guid/environment_variables": "read_env",
  "GET /v3/apps/:guid/env": "read_env",
  "POST /v3/apps/:guid/actions/start": "operate",
  "POST /v3/apps/:guid/actions/stop": "operate",
  "POST /v3/apps/:guid/actions/restart": "operate",
  "PATCH /v3/apps/:guid/processes/:type": "operate",
  "POST /v3/apps/:guid/processes/:type/actions/scale": "operate",
  "PATCH /v3/processes/:guid": "operate",
  "POST /v3/processes/:guid/actions/scale": "operate",
};

export function endpointAction(method: string, routePath: string): SpaceAction {
  const listed = ENDPOINT_ACTIONS[`${method} ${routePath}`];
  if (listed) return listed;
  return method === "GET" || method === "HEAD" ? "read" : "develop";
}
