/**
 * @module Image references: `[host[:port]/]path[:tag][@sha256:hex]`, parsed
 * with distribution/reference's grammar and Docker Hub's normalization
 * (`nginx` → `registry-1.docker.io/library/nginx:latest`). A missing tag means
 * `latest` (CF's builder) unless a digest pins the manifest.
 *
 * @example
 * parseReference("localhost:5000/team/app:1.2").repository // "team/app"
 */
import { RegistryError } from "./errors";

/** The API host of Docker Hub (containerd's choice; `index.docker.io` works too). */
export const DOCKER_HUB_HOST = "registry-1.docker.io";
const HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);

export interface ImageReference {
  /** `host[:port]` to talk to: `registry-1.docker.io` for Docker Hub. */
  host: string;
  /** Repository path, e.g. `library/nginx`. */
  repository: string;
  /** Absent only when a digest pins the image and no tag was written. */
  tag?: string;
  /** `sha256:<64 hex>` when pinned. */
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:.]+\])(?::[0-9]{1,5})?$/;
const MAX_NAME = 255;

const invalid = (ref: string, why: string) => new RegistryError("invalid_reference", `Invalid image reference "${ref}": ${why}.`);

/** Parses and normalizes a reference; throws RegistryError("invalid_reference") saying what is wrong. */
export function parseReference(input: string): ImageReference {
  const ref = input.trim();
  if (!ref) throw invalid(input, "it is empty");
  if (/\s/.test(ref)) throw invalid(ref, "it contains whitespace");
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) throw invalid(ref, "write it without a scheme (no http:// or docker://)");

  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digest.startsWith("sha256:")) throw invalid(ref, "only sha256 digests are supported");
    if (!DIGEST.test(digest)) throw invalid(ref, "a digest is sha256: followed by 64 lowercase hex characters");
  }

  // The tag follows the last ':' when no '/' comes after it (a ':' before a '/' is a port).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(ref, `"${tag}" is not a valid tag (letters, digits, _ . -, at most 128, not starting with . or -)`);
  }

  const parts = rest.split("/");
  let host = DOCKER_HUB_HOST;
  const first = parts[0] ?? "";
  // distribution/reference: the first component is a registry only if it has '.' or ':', is localhost, or has uppercase.
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase())) {
    if (!HOST.test(first)) throw invalid(ref, `"${first}" is not a valid registry host`);
    const port = /:(\d+)$/.exec(first)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw invalid(ref, `port ${port} is out of range`);
    host = HUB_ALIASES.has(first.toLowerCase()) ? DOCKER_HUB_HOST : first.toLowerCase();
    parts.shift();
  }
  if (parts.length === 0 || parts.some((p) => p === "")) throw invalid(ref, "the repository name is empty or has an empty path component");
  for (const p of parts) {
    if (p !== p.toLowerCase()) throw invalid(ref, "repository names must be lowercase");
    if (!COMPONENT.test(p)) throw invalid(ref, `"${p}" is not a valid repository path component (lowercase letters, digits and . _ - separators)`);
  }
  if (host === DOCKER_HUB_HOST && parts.length === 1) parts.unshift("library");
  const repository = parts.join("/");
  if (repository.length > MAX_NAME) throw invalid(ref, `the repository name is longer than ${MAX_NAME} characters`);

  if (!tag && !digest) tag = "latest";
  return { host, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** `host/repository[:tag][@digest]`: the canonical, fully qualified form. */
export function formatReference(r: ImageReference): string {
  return `${r.host}/${r.repository}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

/**
 * How CF's builder names the image in `docker_image` and the droplet's `image`:
 * `library/nginx:latest` for Docker Hub, else `host[:port]/repo:tag`.
 */
export function displayReference(r: ImageReference): string {
  const name = r.host === DOCKER_HUB_HOST ? r.repository : `${r.host}/${r.repository}`;
  return `${name}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

/** What a manifest is fetched by: the digest when pinned, else the tag. */
export const manifestReference = (r: ImageReference): string => r.digest ?? r.tag ?? "latest";
