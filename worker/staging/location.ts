/**
 * @module Where a build's image metadata is resolved (docs/architecture.md § Control plane),
 * as pure decisions. The Worker reaches https registries with public CAs and
 * plain-http registries the admin lists as insecure; a cell is needed for a
 * registry listed as cell-only, one that speaks TLS but is listed as insecure
 * (unverified TLS, which Workers cannot do), and one whose TLS the Worker could
 * not complete while the admin has configured CAs (Workers cannot add CAs).
 */
import type { RegistryAccess } from "../../shared/protocol/registry-access";
import { registryListed } from "../../shared/registry/allow-list";
import type { RegistryError } from "../../shared/registry/errors";

export type StagingLocation = "worker" | "cell";

/** Decided before any request: only the cell-only list is known to need a cell. */
export function initialStagingLocation(registryHost: string, access: RegistryAccess): StagingLocation {
  return registryListed(registryHost, access.cell_only_registries) ? "cell" : "worker";
}

/** After the Worker failed with `error`: should a cell try instead of failing the build? */
export function needsCell(error: RegistryError, registryHost: string, access: RegistryAccess): boolean {
  if (error.code === "tls_required") return true;
  return error.code === "unreachable" && error.noAnswer === true
    && !registryListed(registryHost, access.insecure_registries)
    && access.trusted_ca_certificates.length > 0;
}
