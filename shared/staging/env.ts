/**
 * @module An instance's environment (DESIGN rule 5): the image's Env is the
 * base, the app's variables are laid over it, and the platform's variables
 * come last (Garden appends Diego's env after the image's, so later wins).
 * Users may not set PORT or anything starting with VCAP_ (CC's rule).
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

export interface PlatformEnv {
  port: number;
  instanceIndex: number;
  instanceGuid: string;
  /** VCAP_APPLICATION's content (application_id, name, space, limits, …); port and instance fields are added. */
  application: Record<string, unknown>;
}

/** The final environment of one instance. Reserved names in the app's variables are ignored, never applied. */
export function instanceEnv(imageEnv: readonly string[], appEnv: Readonly<Record<string, string>>, platform: PlatformEnv): Record<string, string> {
  const env = parseImageEnv(imageEnv);
  for (const [k, v] of Object.entries(appEnv)) if (reservedEnvName(k) === null) env[k] = v;
  env.PORT = String(platform.port);
  env.INSTANCE_INDEX = String(platform.instanceIndex);
  env.INSTANCE_GUID = platform.instanceGuid;
  // The launcher patches VCAP_APPLICATION with the instance's own port, index and id.
  env.VCAP_APPLICATION = JSON.stringify({
    ...platform.application,
    port: platform.port,
    instance_index: platform.instanceIndex,
    instance_id: platform.instanceGuid,
  });
  return env;
}
