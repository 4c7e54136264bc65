/**
 * @module The spec snapshot of a new instance: the droplet's pinned image and
 * config, the process's settings and the app's env as they are now, put
 * together by the shared staging rules (rule 5 command, user and env; rule 6
 * port). Taken once per instance (start, restart, scale-up); a replacement
 * copies its predecessor's snapshot with its own identity.
 */
import type { DesiredRow } from "./snapshot";
import type { StoredSpec } from "./stored-spec";
import { instanceEnv, withInstanceGuid } from "../../shared/staging/env";
import { appPort, runUser, runWorkdir, startCommand } from "../../shared/staging/launch";

/** CC's defaults: health_check_timeout 60 s; Diego probes once per 30 s with a 1 s timeout. */
export const HEALTH_CHECK_DEFAULTS = { timeout_s: 60, invocation_timeout_s: 1, interval_s: 30 } as const;

function appEnvOf(json: string): Record<string, string> {
  const parsed: unknown = JSON.parse(json);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return {};
  return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === "string"));
}

export function buildInstanceSpec(
  row: DesiredRow,
  identity: { instanceGuid: string; index: number },
  registryAccessVersion: number,
): { spec: StoredSpec } | { error: string } {
  if ("error" in row.image) return { error: row.image.error };
  const { process: p, app, droplet, image } = row;
  const port = appPort(image.config.exposed_ports);
  const env = instanceEnv(image.config.env, appEnvOf(app.environmentVariables), {
    port,
    instanceIndex: identity.index,
    instanceGuid: identity.instanceGuid,
    application: {
      appGuid: app.guid, appName: app.name, spaceGuid: app.spaceGuid, spaceName: row.space.name, organization: row.space.organization,
      uris: row.uris, memoryMb: p.memoryInMb, diskMb: p.diskInMb, process: { guid: p.guid, type: p.type, version: p.version },
    },
  });
  return {
    spec: {
      instance_guid: identity.instanceGuid,
      process_guid: p.guid,
      process_version: p.version,
      index: identity.index,
      app_guid: app.guid,
      app_name: app.name,
      process_type: p.type,
      image: { ref: image.ref, manifest_digest: image.manifest_digest, layers: image.layers },
      command: startCommand(p.command, image.config),
      user: runUser(p.user, image.config.user),
      env,
      workdir: runWorkdir(image.config),
      port,
      memory_mb: p.memoryInMb,
      disk_mb: p.diskInMb,
      health_check: {
        type: p.healthCheckType,
        timeout_s: p.healthCheckTimeout ?? HEALTH_CHECK_DEFAULTS.timeout_s,
        invocation_timeout_s: p.healthCheckInvocationTimeout ?? HEALTH_CHECK_DEFAULTS.invocation_timeout_s,
        interval_s: p.healthCheckInterval ?? HEALTH_CHECK_DEFAULTS.interval_s,
        endpoint: p.healthCheckType === "http" ? (p.healthCheckEndpoint ?? "/") : null,
      },
      ...(image.config.stop_signal ? { stop_signal: image.config.stop_signal } : {}),
      registry_access_version: registryAccessVersion,
      package_guid: droplet.packageGuid,
    },
  };
}

/** A copy of a spec for a new instance of the same index (a replacement): only its identity changes. */
export function reidentifySpec(spec: StoredSpec, instanceGuid: string): StoredSpec {
  return { ...spec, instance_guid: instanceGuid, env: withInstanceGuid(spec.env, instanceGuid) };
}
