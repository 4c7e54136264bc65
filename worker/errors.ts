/**
 * @module The one error type of the API and its CC v3 envelope:
 * `{"errors":[{"code":N,"title":"CF-...","detail":"..."}]}`. Nothing else builds error JSON.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";

export class CfError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: number,
    readonly title: string,
    readonly detail: string,
  ) {
    super(`${title}: ${detail}`);
  }

  toJSON() {
    return { errors: [{ code: this.code, title: this.title, detail: this.detail }] };
  }
}

// Constructors named after CC's error titles (errors/v2.yml, v3.yml).
export const notAuthenticated = () =>
  new CfError(401, 10002, "CF-NotAuthenticated", "Authentication error");
export const invalidAuthToken = () =>
  new CfError(401, 1000, "CF-InvalidAuthToken", "Invalid Auth Token");
export const notAuthorized = () =>
  new CfError(403, 10003, "CF-NotAuthorized", "You are not authorized to perform the requested action");
export const resourceNotFound = (resource: string) =>
  new CfError(404, 10010, "CF-ResourceNotFound", `${resource} not found`);
export const unprocessable = (detail: string) =>
  new CfError(422, 10008, "CF-UnprocessableEntity", detail);
export const badRequest = (detail: string) =>
  new CfError(400, 1001, "CF-MessageParseError", `Request invalid due to parse error: ${detail}`);
export const featureDisabled = (message: string) =>
  new CfError(403, 330002, "CF-FeatureDisabled", `Feature Disabled: ${message}`);
export const tooLarge = (limit: number) =>
  new CfError(413, 10014, "CF-RequestEntityTooLarge", `Request body is larger than ${limit} bytes`);
export const upgradeRequired = () =>
  new CfError(400, 10005, "CF-InvalidRequest", "This endpoint speaks WebSocket: send an Upgrade: websocket request");
export const notFoundRoute = () =>
  new CfError(404, 10000, "CF-NotFound", "Unknown request");
