/**
 * @module The API lines of an app's logs, in Cloud Controller's words: what
 * CC emits beside the audit event it records for the same change (its app
 * and process event repositories). Pure; written after the change commits
 * (http/after-commit.ts), so a line never tells of a change that did not happen.
 */
import type { AuditEventType } from "../db/audit";

/** A value as Ruby's `inspect` prints it: CC puts request hashes into its lines that way. */
export function rubyInspect(value: unknown): string {
  if (value === null || value === undefined) return "nil";
  if (Array.isArray(value)) return `[${value.map(rubyInspect).join(", ")}]`;
  if (typeof value === "object") return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}=>${rubyInspect(v)}`).join(", ")}}`;
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** CC hides these in the request it logs. */
const CENSORED = new Set(["environment_variables", "command", "docker_credentials"]);

const censored = (request: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(request).map(([k, v]) => [k, CENSORED.has(k) ? "PRIVATE DATA HIDDEN" : v]));

export type ApiLineEvent =
  | { type: Extract<AuditEventType, "audit.app.create" | "audit.app.start" | "audit.app.stop" | "audit.app.restart" | "audit.app.delete-request" | "audit.app.apply_manifest">; appGuid: string }
  | { type: Extract<AuditEventType, "audit.app.update" | "audit.app.droplet.mapped">; appGuid: string; request: Record<string, unknown> }
  | { type: Extract<AuditEventType, "audit.app.process.scale" | "audit.app.process.update">; appGuid: string; processType: string }
  | { type: "audit.app.process.crash"; appGuid: string; processType: string; payload: Record<string, unknown> }
  | { type: Extract<AuditEventType, "audit.app.deployment.create" | "audit.app.deployment.cancel">; appGuid: string };

/** CC's lines for one recorded change, oldest first. */
export function apiLines(e: ApiLineEvent): string[] {
  const app = e.appGuid;
  switch (e.type) {
    case "audit.app.create":
      return [`Created app with guid ${app}`];
    case "audit.app.start":
      return [`Starting app with guid ${app}`];
    case "audit.app.stop":
      return [`Stopping app with guid ${app}`];
    case "audit.app.restart":
      return [`Restarted app with guid ${app}`];
    case "audit.app.delete-request":
      return [`Deleted app with guid ${app}`];
    // CC adds the manifest's YAML; Berth leaves it out (env values are in it).
    case "audit.app.apply_manifest":
      return [`Applied manifest to app with guid ${app}`];
    case "audit.app.update":
    case "audit.app.droplet.mapped":
      return [`Updated app with guid ${app} (${rubyInspect(censored(e.request))})`];
    case "audit.app.process.scale":
      return [`Scaling process: ${JSON.stringify(e.processType)}`];
    case "audit.app.process.update":
      return [`Updating process: ${JSON.stringify(e.processType)}`];
    case "audit.app.deployment.create":
      return [`Creating deployment for app with guid ${app}`];
    case "audit.app.deployment.cancel":
      return [`Cancelling deployment for app with guid ${app}`];
    case "audit.app.process.crash":
      return [`Process has crashed with type: ${JSON.stringify(e.processType)}`, `App instance exited with guid ${app} payload: ${rubyInspect(e.payload)}`];
  }
}
