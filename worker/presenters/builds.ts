/** @module CC v3 shape of a build (docs builds/_object.md.erb) for the docker lifecycle. */
import type { Build } from "../db/builds";
import { emptyMetadata, type Linker } from "./links";

/** CC's staging defaults (cc.default_app_memory / default_app_disk_in_mb); metadata resolution uses neither. */
const STAGING_MEMORY_MB = 1024;
const STAGING_DISK_MB = 1024;

export function presentBuild(b: Build, l: Linker) {
  return {
    guid: b.guid,
    created_at: b.createdAt,
    updated_at: b.updatedAt,
    state: b.state,
    staging_memory_in_mb: STAGING_MEMORY_MB,
    staging_disk_in_mb: STAGING_DISK_MB,
    staging_log_rate_limit_bytes_per_second: -1,
    error: b.error,
    lifecycle: { type: "docker", data: {} },
    package: { guid: b.packageGuid },
    droplet: b.dropletGuid ? { guid: b.dropletGuid } : null,
    created_by: { guid: b.createdByGuid, name: b.createdByName ?? b.createdByGuid, email: null },
    relationships: { app: { data: { guid: b.appGuid } } },
    metadata: emptyMetadata(),
    links: {
      self: l(`/v3/builds/${b.guid}`),
      app: l(`/v3/apps/${b.appGuid}`),
      ...(b.dropletGuid ? { droplet: l(`/v3/droplets/${b.dropletGuid}`) } : {}),
    },
  };
}
