/** @module An app's manifest as CC's GET /v3/apps/:guid/manifest writes it (cf create-app-manifest): pure. */
import { stringify } from "yaml";
import type { Process } from "../db/processes";

export interface ManifestSource {
  name: string;
  env: Record<string, string>;
  docker: { image: string; username: string | null } | null;
  processes: Process[];
  /** `host.domain` of each mapped route. */
  routes: string[];
}

/** One app's entry of `applications:`. */
export function manifestApp(s: ManifestSource): Record<string, unknown> {
  const app: Record<string, unknown> = { name: s.name };
  if (s.docker) app.docker = s.docker.username ? { image: s.docker.image, username: s.docker.username } : { image: s.docker.image };
  if (Object.keys(s.env).length > 0) app.env = s.env;
  app.processes = s.processes.map((p) => {
    const out: Record<string, unknown> = { type: p.type, instances: p.instances, memory: `${p.memoryInMb}M`, disk_quota: `${p.diskInMb}M` };
    if (p.command) out.command = p.command;
    out["health-check-type"] = p.healthCheck.type;
    if (p.healthCheck.type === "http" && p.healthCheck.endpoint) out["health-check-http-endpoint"] = p.healthCheck.endpoint;
    if (p.healthCheck.timeout) out.timeout = p.healthCheck.timeout;
    return out;
  });
  if (s.routes.length > 0) app.routes = s.routes.map((route) => ({ route, protocol: "http1" }));
  else app["no-route"] = true;
  return app;
}

export const manifestYaml = (s: ManifestSource): string => stringify({ applications: [manifestApp(s)] });
