/**
 * @module What the global setups hand to tests through vitest's
 * `provide`/`inject`. Types only, with no Node imports, so tests inside
 * workerd can import it too.
 */

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
}

declare module "vitest" {
  export interface ProvidedContext {
    registry: ProvidedRegistry;
    stagingRegistries: StagingRegistries;
  }
}
