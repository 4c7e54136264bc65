/**
 * @module Staging on a cell (docs/architecture.md § Where staging runs): resolve the image
 * metadata with the admin's CA certificates and insecure list, through the
 * same shared client the Worker uses, for the host's own platform.
 */
import { arch } from "node:os";
import type { RegistryAccess } from "../../shared/protocol/registry-access";
import { MAX_STAGING_RESULT_BYTES, type StagingTask } from "../../shared/protocol/staging";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";
import { parseReference } from "../../shared/registry/reference";
import { resolveImage } from "../../shared/registry/resolve";
import { registrySchemes } from "../../shared/registry/session";
import { listedRegistries } from "../../shared/registry/targets";
import { createRegistryFetch } from "../images/registry-fetch";
import type { StagingOutcome } from "./control-plane";

/** Node's arch names → OCI's. */
const OCI_ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x" };

export async function stageOnCell(task: StagingTask, access: RegistryAccess, timeoutMs = 120_000): Promise<StagingOutcome> {
  const registryFetch = createRegistryFetch({ trustedCaCertificates: access.trusted_ca_certificates, insecureRegistries: access.insecure_registries, cellOnlyRegistries: access.cell_only_registries });
  try {
    const ref = parseReference(task.image);
    const image = await resolveImage(ref, {
      fetch: registryFetch.fetch,
      schemes: registrySchemes(ref.host, access.insecure_registries, { canSkipTlsVerify: true }),
      listedRegistries: listedRegistries(access),
      platform: { os: "linux", architecture: OCI_ARCH[arch()] ?? arch() },
      signal: AbortSignal.timeout(timeoutMs),
      ...(task.credentials ? { credentials: task.credentials } : {}),
    });
    return { build_guid: task.build_guid, state: "STAGED", image };
  } catch (e) {
    return { build_guid: task.build_guid, state: "FAILED", error: (e as Error).message.slice(0, 1024) };
  } finally {
    await registryFetch.close();
  }
}

/**
 * The result to send for a build: `result` itself, or a FAILED result naming
 * the cap when its body would be larger than the control plane accepts
 * (sending it would be refused every time).
 */
export function boundedStagingResult(result: StagingOutcome): StagingOutcome {
  const bytes = Buffer.byteLength(JSON.stringify({ protocol: PROTOCOL_VERSION, ...result }));
  if (bytes <= MAX_STAGING_RESULT_BYTES) return result;
  return { build_guid: result.build_guid, state: "FAILED", error: `the image's staging result is ${bytes} bytes, more than the ${MAX_STAGING_RESULT_BYTES} the control plane accepts` };
}
