/**
 * @module UAA's error envelope, `{"error": "...", "error_description": "..."}`,
 * which the cf CLI parses for the /uaa endpoints (CC's envelope is CfError's).
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";

export class UaaError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly error: string,
    readonly description: string,
  ) {
    super(`${error}: ${description}`);
  }

  toJSON() {
    return { error: this.error, error_description: this.description };
  }
}

export const badCredentials = () => new UaaError(401, "unauthorized", "Bad credentials");
/** The exact text the cf CLI turns into its "account locked" message. */
export const accountLocked = () => new UaaError(401, "unauthorized", "Your account has been locked because of too many failed attempts to login.");
export const invalidClient = () => new UaaError(401, "invalid_client", "Bad client credentials");
export const invalidGrant = (description: string) => new UaaError(401, "invalid_token", description);
export const invalidRequest = (description: string) => new UaaError(400, "invalid_request", description);
export const unsupportedGrant = (grant: string) => new UaaError(400, "unsupported_grant_type", `Unsupported grant type: ${grant}`);
export const uaaUnauthorized = () => new UaaError(401, "unauthorized", "Full authentication is required to access this resource");
export const insufficientScope = () => new UaaError(403, "insufficient_scope", "Insufficient scope for this resource");
export const scimNotFound = (id: string) => new UaaError(404, "scim_resource_not_found", `User ${id} does not exist`);
export const scimConflict = (name: string) => new UaaError(409, "scim_resource_already_exists", `Username already in use: ${name}`);
export const invalidScim = (description: string) => new UaaError(400, "invalid_scim_resource", description);
export const invalidPassword = (description: string) => new UaaError(422, "invalid_password", description);
