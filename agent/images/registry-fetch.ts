/**
 * @module The `fetch` a cell hands to the shared registry client: undici 7's
 * own fetch (Node 20's global fetch bundles undici 6, whose dispatchers do not
 * mix with ours), trusting the system roots plus the admin's CA certificates,
 * and skipping TLS verification only for registries on the admin's insecure
 * list (DESIGN rule 3).
 *
 * @example
 * const fetch = createRegistryFetch({ trustedCaCertificates: access.trusted_ca_certificates, insecureRegistries: access.insecure_registries });
 * await resolveImage(ref, { fetch, schemes: registrySchemes(ref.host, access.insecure_registries, { canSkipTlsVerify: true }) });
 */
import { rootCertificates } from "node:tls";
import { Agent, fetch as undiciFetch } from "undici";
import { registryListed } from "../../shared/registry/allow-list";

export interface RegistryFetchOptions {
  /** PEM certificates trusted in addition to the system store. */
  trustedCaCertificates?: readonly string[];
  /** Hosts, IPs or CIDRs (with optional :port) whose TLS certificates are not verified. */
  insecureRegistries?: readonly string[];
  /** Keep-alive connections per origin. */
  connections?: number;
}

export interface RegistryFetch {
  fetch: typeof fetch;
  /** Closes the pooled connections. */
  close(): Promise<void>;
}

export function createRegistryFetch(opts: RegistryFetchOptions = {}): RegistryFetch {
  // `ca` replaces Node's default roots, so the system roots are passed along with the admin's.
  const ca = [...rootCertificates, ...(opts.trustedCaCertificates ?? [])];
  const verified = new Agent({ connect: { ca }, connections: opts.connections ?? 8 });
  const unverified = new Agent({ connect: { rejectUnauthorized: false }, connections: opts.connections ?? 8 });
  const insecure = opts.insecureRegistries ?? [];

  const registryFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const dispatcher = url.protocol === "https:" && registryListed(url.host, insecure) ? unverified : verified;
    const res = await undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher });
    // undici's Response implements the same WHATWG interface as the global one.
    return res as unknown as Response;
  };
  return {
    fetch: registryFetch,
    close: async () => {
      await Promise.all([verified.close(), unverified.close()]);
    },
  };
}
