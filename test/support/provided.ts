/**
 * @module What the global setups hand to tests through vitest's
 * `provide`/`inject`. Types and constants only, with no Node imports, so
 * tests inside workerd can import it too.
 */

/** What inward-service.ts answers every request with: no error message may carry it. */
export const INWARD_SECRET = "inward-secret-7f3a: the metadata a tenant must never read";

/** `inject("registry")`: the run's fixture registry. */
export interface ProvidedRegistry {
  /** `127.0.0.1:PORT`, plain HTTP, anonymous. */
  host: string;
  /** The registry's storage: serve it again read-only with other auth or TLS (startRegistry `storageDir`). */
  storageDir: string;
}

/** `inject("stagingRegistries")` (worker project): registries and fault servers, each a `127.0.0.1:PORT`. */
export interface StagingRegistries {
  /** htpasswd Basic auth; user and password below. */
  basic: string;
  basicUsername: string;
  basicPassword: string;
  /** https with a certificate from a test CA the Worker does not trust: only a cell could use it. */
  tls: string;
  /** That test CA's certificate (PEM), for the admin's trusted_ca_certificates. */
  tlsCaPem: string;
  /** Serves the fixtures with every blob corrupted. */
  tampered: string;
  hanging: string;
  stopped: string;
  /** A loopback service standing for the host's own (inward-service.ts): `GET /__requests` counts what it got. */
  inward: string;
  /** A hostile registry: the fixtures, with every manifest redirected to `inward`. */
  redirectsInward: string;
  /** A hostile registry whose token realm is on `inward`. */
  realmInward: string;
  /** A registry serving an image whose config has 100 000 Env entries (crafted-image-registry.ts). */
  bloatedImage: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    registry: ProvidedRegistry;
    stagingRegistries: StagingRegistries;
  }
}
