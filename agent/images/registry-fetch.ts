/**
 * @module The `fetch` a cell hands to the shared registry client: undici 7's
 * own fetch (Node 20's global fetch bundles undici 6, whose dispatchers do not
 * mix with ours), trusting the system roots plus the admin's CA certificates,
 * and skipping TLS verification only for registries on the admin's insecure
 * list (docs/architecture.md, rule 3).
 *
 * The agent runs in the host's network namespace, so a registry name that
 * resolves to loopback, link-local or private addresses would reach the
 * host's own services: for hosts the admin did not list, every address DNS
 * answers is checked at connect time (the shared client checks IP literals
 * and `localhost` before any request; Node does not look literals up).
 *
 * @example
 * const fetch = createRegistryFetch({ trustedCaCertificates: access.trusted_ca_certificates, insecureRegistries: access.insecure_registries, cellOnlyRegistries: access.cell_only_registries });
 * await resolveImage(ref, { fetch, listedRegistries: listedRegistries(access), schemes: registrySchemes(ref.host, access.insecure_registries, { canSkipTlsVerify: true }) });
 */
import { lookup, type LookupAddress, type LookupOptions } from "node:dns";
import { rootCertificates } from "node:tls";
import { Agent, fetch as undiciFetch } from "undici";
import { parseIp, registryListed } from "../../shared/registry/allow-list";
import { RegistryError } from "../../shared/registry/errors";
import { hostWithPort, inwardAddressKind, listedRegistries } from "../../shared/registry/targets";

export interface RegistryFetchOptions {
  /** PEM certificates trusted in addition to the system store. */
  trustedCaCertificates?: readonly string[];
  /** Hosts, IPs or CIDRs (with optional :port) whose TLS certificates are not verified. */
  insecureRegistries?: readonly string[];
  /** Registries the admin listed as reachable from cells only; these and the insecure ones may resolve to inward addresses. */
  cellOnlyRegistries?: readonly string[];
  /** Keep-alive connections per origin. */
  connections?: number;
}

export interface RegistryFetch {
  fetch: typeof fetch;
  /** Closes the pooled connections. */
  close(): Promise<void>;
}

/** A name that resolved to an address registry fetches may not reach. */
class InwardAddressError extends Error {
  constructor(readonly hostname: string, readonly address: string, readonly kind: string) {
    super(`${hostname} resolves to ${address}, a ${kind} address`);
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** dns.lookup that fails when any answer is inward (net.connect calls it for names only). */
function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    for (const a of addresses) {
      const kind = inwardAddressKind(parseIp(a.address) ?? []);
      if (kind) return callback(new InwardAddressError(hostname, a.address, kind), []);
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    return first ? callback(null, first.address, first.family) : callback(new Error(`no address for ${hostname}`), []);
  });
}

/** The guard's error inside undici's "fetch failed" TypeError, if that is what failed. */
function inwardCause(e: unknown): InwardAddressError | undefined {
  for (let c: unknown = e; c instanceof Error; c = c.cause) if (c instanceof InwardAddressError) return c;
  return undefined;
}

export function createRegistryFetch(opts: RegistryFetchOptions = {}): RegistryFetch {
  // `ca` replaces Node's default roots, so the system roots are passed along with the admin's.
  const ca = [...rootCertificates, ...(opts.trustedCaCertificates ?? [])];
  const connections = opts.connections ?? 8;
  const guarded = new Agent({ connect: { ca, lookup: guardedLookup }, connections });
  const listedVerified = new Agent({ connect: { ca }, connections });
  const unverified = new Agent({ connect: { rejectUnauthorized: false }, connections });
  const insecure = opts.insecureRegistries ?? [];
  const listed = listedRegistries({ insecure_registries: insecure, cell_only_registries: opts.cellOnlyRegistries ?? [] });

  const registryFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const dispatcher = url.protocol === "https:" && registryListed(url.host, insecure) ? unverified
      : registryListed(hostWithPort(url), listed) ? listedVerified
      : guarded;
    try {
      const res = await undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher });
      // undici's Response implements the same WHATWG interface as the global one.
      return res as unknown as Response;
    } catch (e) {
      const inward = inwardCause(e);
      if (inward) {
        throw new RegistryError("refused_target", `Fetching from ${url.origin} is refused: ${inward.message}, which registries are not fetched from unless the admin lists them in the registry access.`);
      }
      throw e;
    }
  };
  return {
    fetch: registryFetch,
    close: async () => {
      await Promise.all([guarded.close(), listedVerified.close(), unverified.close()]);
    },
  };
}
