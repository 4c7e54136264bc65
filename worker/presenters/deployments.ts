/** @module CC's deployment resource (DeploymentPresenter; no revisions in Berth, so `revision` is null). */
import type { Deployment } from "../deployments/repo";
import { isCancelable } from "../deployments/updater";
import { emptyMetadata, type Linker, postLink } from "./links";

export function presentDeployment(d: Deployment, l: Linker) {
  return {
    guid: d.guid,
    created_at: d.createdAt,
    updated_at: d.updatedAt,
    status: {
      value: d.statusValue,
      reason: d.statusReason,
      details: {
        last_successful_healthcheck: d.lastHealthyAt,
        last_status_change: d.statusUpdatedAt,
        ...(d.error ? { error: d.error } : {}),
      },
    },
    strategy: d.strategy,
    options: { max_in_flight: d.maxInFlight },
    droplet: { guid: d.dropletGuid },
    previous_droplet: { guid: d.previousDropletGuid },
    new_processes: d.newProcesses,
    revision: null,
    relationships: { app: { data: { guid: d.appGuid } } },
    metadata: emptyMetadata(),
    links: {
      self: l(`/v3/deployments/${d.guid}`),
      app: l(`/v3/apps/${d.appGuid}`),
      ...(isCancelable(d.state) ? { cancel: postLink(l, `/v3/deployments/${d.guid}/actions/cancel`) } : {}),
    },
  };
}
