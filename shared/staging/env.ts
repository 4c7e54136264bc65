/**
 * @module An instance's environment (docs/architecture.md, rule 5): the image's Env is the
 * base, the app's variables are laid over it, and the platform's variables
 * come last (Garden appends Diego's env after the image's, so later wins).
 * Users may not set PORT or anything starting with VCAP_ (CC's rule).
 *
 * The platform's variables are CF's (docs "Cloud Foundry environment
 * variables"): VCAP_APPLICATION, VCAP_SERVICES, PORT, MEMORY_LIMIT,
 * INSTANCE_INDEX/GUID and CF_INSTANCE_*. The control plane knows all but the
 * instance's addresses and host port, which the cell adds (cellInstanceEnv).
 */

/** Why a user may not set this name, or null when it is allowed. */
export function reservedEnvName(name: string): string | null {
  if (name === "PORT") return "PORT is set by the platform and cannot be set by users";
  if (name.startsWith("VCAP_")) return "names starting with VCAP_ are reserved for the platform";
  return null;
}

/** `["K=V", …]` → {K: V}; an entry without `=` is dropped (Docker leaves such names unset too); later entries win. */
export function parseImageEnv(env: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of env) {
    const i = entry.indexOf("=");
    if (i > 0) out[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return out;
}

/** Garden's default file-descriptor limit, which CC reports in VCAP_APPLICATION's limits. */
export const FDS_LIMIT = 16384;

/** What VCAP_APPLICATION says about an app, as CC builds it (vcap_application in CC's env presenter). */
export interface ApplicationFacts {
  appGuid: string;
  appName: string;
  spaceGuid: string;
  spaceName: string;
  /** The space's organization (null only if it could not be read). */
  organization: { guid: string; name: string } | null;
  /** The process's mapped routes, `host.domain`. */
  uris: string[];
  memoryMb: number;
  diskMb: number;
  /** The process's guid, type and version (CC's application_version is the process version). */
  process?: { guid: string; type: string; version: string };
}

/** VCAP_APPLICATION without an instance's fields (GET /v3/apps/:guid/env shows this). */
export function vcapApplication(f: ApplicationFacts): Record<string, unknown> {
  return {
    application_id: f.appGuid,
    application_name: f.appName,
    application_uris: f.uris,
    ...(f.process ? { application_version: f.process.version } : {}),
    cf_api: null,
    limits: { fds: FDS_LIMIT, mem: f.memoryMb, disk: f.diskMb },
    name: f.appName,
    organization_id: f.organization?.guid ?? null,
    organization_name: f.organization?.name ?? null,
    ...(f.process ? { process_id: f.process.guid, process_type: f.process.type } : {}),
    space_id: f.spaceGuid,
    space_name: f.spaceName,
    uris: f.uris,
    users: null,
    ...(f.process ? { version: f.process.version } : {}),
  };
}

export interface PlatformEnv {
  port: number;
  instanceIndex: number;
  instanceGuid: string;
  application: ApplicationFacts;
}

/** The final environment of one instance. Reserved names in the app's variables are ignored, never applied. */
export function instanceEnv(imageEnv: readonly string[], appEnv: Readonly<Record<string, string>>, platform: PlatformEnv): Record<string, string> {
  const env = parseImageEnv(imageEnv);
  for (const [k, v] of Object.entries(appEnv)) if (reservedEnvName(k) === null) env[k] = v;
  env.PORT = String(platform.port);
  env.MEMORY_LIMIT = `${platform.application.memoryMb}m`;
  env.VCAP_SERVICES = "{}";
  env.INSTANCE_INDEX = env.CF_INSTANCE_INDEX = String(platform.instanceIndex);
  // The launcher patches VCAP_APPLICATION with the instance's host, port, index and id.
  env.VCAP_APPLICATION = JSON.stringify({
    ...vcapApplication(platform.application),
    host: "0.0.0.0",
    port: platform.port,
    instance_index: platform.instanceIndex,
  });
  return withInstanceGuid(env, platform.instanceGuid);
}

/** The env with a (new) instance guid in every place CF puts it. */
export function withInstanceGuid(env: Readonly<Record<string, string>>, instanceGuid: string): Record<string, string> {
  const out: Record<string, string> = { ...env, INSTANCE_GUID: instanceGuid, CF_INSTANCE_GUID: instanceGuid };
  if (out.VCAP_APPLICATION) {
    const vcap: unknown = JSON.parse(out.VCAP_APPLICATION);
    if (typeof vcap === "object" && vcap !== null) out.VCAP_APPLICATION = JSON.stringify({ ...vcap, instance_id: instanceGuid });
  }
  return out;
}

/** Where the cell put an instance: its address and host port, its container address and app port. */
export interface InstancePlacement {
  cellAddress: string;
  hostPort: number;
  containerIp: string;
  appPort: number;
}

/** What Diego's executor adds once the container has its network: CF_INSTANCE_IP, _PORT, _ADDR, _PORTS, _INTERNAL_IP. */
export function cellInstanceEnv(p: InstancePlacement): Record<string, string> {
  return {
    CF_INSTANCE_IP: p.cellAddress,
    CF_INSTANCE_INTERNAL_IP: p.containerIp,
    CF_INSTANCE_PORT: String(p.hostPort),
    CF_INSTANCE_ADDR: `${p.cellAddress}:${p.hostPort}`,
    CF_INSTANCE_PORTS: JSON.stringify([{ external: p.hostPort, internal: p.appPort }]),
  };
}
