/**
 * @module Registry errors: one class with a string-literal code, shared by the
 * Worker's staging, the agent's pulls and the CLI. Messages are written for the
 * person who typed the image name; `code` is what programs branch on.
 */

export type RegistryErrorCode =
  /** The reference does not parse (bad characters, empty name, bad digest). */
  | "invalid_reference"
  /** The repository, tag, digest or platform does not exist. */
  | "not_found"
  /** Credentials are missing or refused, or the token does not grant pull. */
  | "unauthorized"
  /** 429 from the registry after the retries allowed; `retryAfterSeconds` when it said. */
  | "rate_limited"
  /** A manifest or layer type this client does not run (schema 1, artifacts, encrypted layers). */
  | "unsupported_media_type"
  /** Bytes that do not hash to the digest they were asked for or announced with. */
  | "digest_mismatch"
  /** A manifest or config that is not what the image spec says it must be. */
  | "invalid_image"
  /** No connection, a reset, a 5xx after retries, or no registry API at that address. */
  | "unreachable"
  /** A plain-HTTP request was answered as by a TLS server: the registry needs TLS. */
  | "tls_required"
  /** A request or the whole resolution ran past its time budget. */
  | "timeout"
  /** A manifest, config or token larger than the client accepts. */
  | "too_large"
  /**
   * A URL this client will not fetch (targets.ts): an https→http downgrade, or
   * a loopback, link-local or private address the admin did not list.
   */
  | "refused_target";

export class RegistryError extends Error {
  override readonly name = "RegistryError";
  readonly code: RegistryErrorCode;
  /** For rate_limited: the registry's Retry-After, in seconds. */
  readonly retryAfterSeconds?: number;
  /**
   * For unreachable: no HTTP answer at all (refused, reset, or a TLS handshake
   * the runtime would not complete), as opposed to an answer with a 5xx.
   */
  readonly noAnswer?: boolean;

  constructor(code: RegistryErrorCode, message: string, options: { cause?: unknown; retryAfterSeconds?: number; noAnswer?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
    if (options.noAnswer) this.noAnswer = true;
  }
}

export const isRegistryError = (e: unknown): e is RegistryError => e instanceof RegistryError;
