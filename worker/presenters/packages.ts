/** @module CC v3 shape of a docker package. The password is never shown: "***" says one is set. */
import type { Package } from "../db/packages";
import { emptyMetadata, type Linker } from "./links";

export function presentPackage(p: Package, l: Linker) {
  return {
    guid: p.guid,
    type: p.type,
    data: { image: p.image, username: p.username, password: p.hasPassword ? "***" : null },
    state: p.state,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
    metadata: emptyMetadata(),
    links: { self: l(`/v3/packages/${p.guid}`), app: l(`/v3/apps/${p.appGuid}`) },
  };
}
