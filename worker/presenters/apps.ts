/** @module CC v3 shapes of an app and its environment (apps_spec "create a docker app"). */
import type { App } from "../db/apps";
import { emptyMetadata, type Linker, postLink } from "./links";
import { vcapApplication, type ApplicationFacts } from "../../shared/staging/env";

export function presentApp(app: App, l: Linker) {
  const base = `/v3/apps/${app.guid}`;
  return {
    guid: app.guid,
    name: app.name,
    state: app.state,
    created_at: app.createdAt,
    updated_at: app.updatedAt,
    lifecycle: { type: "docker", data: {} },
    relationships: {
      space: { data: { guid: app.spaceGuid } },
      current_droplet: { data: { guid: app.currentDropletGuid } },
    },
    metadata: emptyMetadata(),
    links: {
      self: l(base),
      environment_variables: l(`${base}/environment_variables`),
      space: l(`/v3/spaces/${app.spaceGuid}`),
      processes: l(`${base}/processes`),
      packages: l(`${base}/packages`),
      current_droplet: l(`${base}/droplets/current`),
      droplets: l(`${base}/droplets`),
      tasks: l(`${base}/tasks`),
      start: postLink(l, `${base}/actions/start`),
      stop: postLink(l, `${base}/actions/stop`),
      clear_buildpack_cache: postLink(l, `${base}/actions/clear_buildpack_cache`),
      revisions: l(`${base}/revisions`),
      deployed_revisions: l(`${base}/revisions/deployed`),
      features: l(`${base}/features`),
    },
  };
}

export function presentEnvironmentVariables(appGuid: string, vars: Record<string, string>, l: Linker) {
  return {
    var: vars,
    links: { self: l(`/v3/apps/${appGuid}/environment_variables`), app: l(`/v3/apps/${appGuid}`) },
  };
}

/**
 * CC's GET /v3/apps/:guid/env: the user's vars plus what the platform would set
 * (VCAP_APPLICATION as CC builds it; Berth has no services or env groups).
 */
export function presentAppEnv(app: App, facts: ApplicationFacts) {
  const vcap = vcapApplication(facts);
  return {
    staging_env_json: {},
    running_env_json: {},
    environment_variables: app.environmentVariables,
    system_env_json: { VCAP_SERVICES: {} },
    application_env_json: { VCAP_APPLICATION: vcap },
  };
}
