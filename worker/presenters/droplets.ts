/** @module CC v3 shape of a Docker droplet (docs droplets/_object.md.erb): checksum, buildpacks and stack are null. */
import type { droplets } from "../db/schema";
import { emptyMetadata, type Linker } from "./links";

export type DropletRow = typeof droplets.$inferSelect;

export function presentDroplet(d: DropletRow, l: Linker) {
  return {
    guid: d.guid,
    state: d.state,
    error: null,
    lifecycle: { type: "docker", data: {} },
    execution_metadata: d.executionMetadata,
    process_types: d.processTypes,
    checksum: null,
    buildpacks: null,
    stack: null,
    image: d.image,
    created_at: d.createdAt,
    updated_at: d.updatedAt,
    relationships: { app: { data: { guid: d.appGuid } } },
    metadata: emptyMetadata(),
    links: {
      self: l(`/v3/droplets/${d.guid}`),
      ...(d.packageGuid ? { package: l(`/v3/packages/${d.packageGuid}`) } : {}),
      app: l(`/v3/apps/${d.appGuid}`),
      assign_current_droplet: { ...l(`/v3/apps/${d.appGuid}/relationships/current_droplet`), method: "PATCH" as const },
    },
  };
}
