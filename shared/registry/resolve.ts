/**
 * @module Resolving an image reference to what staging pins and cells pull:
 * the manifest digest (for the wanted platform when the reference names an
 * index, whose digest is kept too), the config fields, and the layers with
 * their diff_ids. Every manifest and the config are checked against their
 * digests; their sizes are capped.
 *
 * @example
 * const image = await resolveImage("127.0.0.1:5000/httpd", { fetch, schemes: ["http"] });
 * image.manifest_digest; image.config.exposed_ports; image.layers[0].diff_id
 */
import type { ResolvedImage } from "../protocol/image";
import { sha256Digest, verifyDigest } from "./digest";
import { parseImageConfig, parseManifestDocument, type ImageManifest } from "./documents";
import { RegistryError } from "./errors";
import { MANIFEST_ACCEPT, bareMediaType } from "./media-types";
import { choosePlatform, DEFAULT_PLATFORM, formatPlatform, type Platform } from "./platform";
import { formatReference, manifestReference, parseReference, type ImageReference } from "./reference";
import { openRegistrySession, readLimited, type RegistryClientOptions, type RegistrySession } from "./session";

export interface ResolveOptions extends RegistryClientOptions {
  /** linux/amd64 in the Worker; a cell passes its own. */
  platform?: Platform;
  /** containerd's MaxManifestSize: 4 MiB. */
  maxManifestBytes?: number;
  maxConfigBytes?: number;
}

export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** Registry error bodies: `{"errors":[{"code":"MANIFEST_UNKNOWN",…}]}`. */
async function registryErrorCode(res: Response): Promise<string | undefined> {
  try {
    const json: unknown = JSON.parse(new TextDecoder().decode(await readLimited(res, 64 * 1024, "error body")));
    if (typeof json === "object" && json !== null && "errors" in json && Array.isArray(json.errors)) {
      const first: unknown = json.errors[0];
      if (typeof first === "object" && first !== null && "code" in first && typeof first.code === "string") return first.code;
    }
  } catch {
    // An unreadable error body only costs the message its detail.
  }
  return undefined;
}

interface FetchedManifest {
  bytes: Uint8Array<ArrayBuffer>;
  contentType: string;
  digest: string;
}

async function fetchManifest(session: RegistrySession, reference: string, expectedDigest: string | undefined, limit: number): Promise<FetchedManifest> {
  const { res, disarm } = await session.get(`/v2/${session.ref.repository}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
  try {
    if (res.status === 404) {
      const code = await registryErrorCode(res);
      if (code === "NAME_UNKNOWN") throw new RegistryError("not_found", `Image ${session.what} was not found: the repository ${session.ref.repository} does not exist on ${session.ref.host}.`);
      const which = reference.startsWith("sha256:") ? `digest ${reference}` : `tag ${reference}`;
      throw new RegistryError("not_found", `Image ${session.what} was not found: ${session.ref.repository} has no ${which}.`);
    }
    if (res.status === 403) throw new RegistryError("unauthorized", `The registry ${session.ref.host} denied access to ${session.what}.`);
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new RegistryError("unreachable", `The registry ${session.ref.host} answered ${res.status} for the manifest of ${session.what}.`);
    }
    const bytes = await readLimited(res, limit, `The manifest of ${session.what}`);
    const what = `The manifest of ${session.what}`;
    let digest: string;
    if (expectedDigest) {
      await verifyDigest(bytes, expectedDigest, what);
      digest = expectedDigest;
    } else {
      digest = await sha256Digest(bytes);
    }
    const announced = res.headers.get("docker-content-digest");
    if (announced && announced.startsWith("sha256:") && announced !== digest) {
      throw new RegistryError("digest_mismatch", `${what} does not match the digest the registry announced: ${announced}, the content hashes to ${digest}.`);
    }
    return { bytes, contentType: bareMediaType(res.headers.get("content-type")), digest };
  } finally {
    disarm();
  }
}

async function fetchConfig(session: RegistrySession, manifest: ImageManifest, limit: number): Promise<Uint8Array<ArrayBuffer>> {
  const { digest, size } = manifest.config;
  const what = `The config of ${session.what}`;
  if (size > limit) throw new RegistryError("too_large", `${what} is ${size} bytes, more than the ${limit} accepted.`);
  const { res, disarm } = await session.get(`/v2/${session.ref.repository}/blobs/${digest}`);
  try {
    if (res.status === 404) {
      await res.body?.cancel();
      throw new RegistryError("not_found", `${what} (blob ${digest}) is missing from the registry.`);
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new RegistryError("unreachable", `The registry ${session.ref.host} answered ${res.status} for ${what.toLowerCase()}.`);
    }
    const bytes = await readLimited(res, limit, what);
    await verifyDigest(bytes, digest, what);
    return bytes;
  } finally {
    disarm();
  }
}

/** Resolves `reference` (a string or a parsed reference) to the pinned image. */
export async function resolveImage(reference: string | ImageReference, options: ResolveOptions): Promise<ResolvedImage> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const platform = options.platform ?? DEFAULT_PLATFORM;
  const maxManifest = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
  const session = await openRegistrySession(ref, options);

  const top = await fetchManifest(session, manifestReference(ref), ref.digest, maxManifest);
  let doc = parseManifestDocument(top.bytes, top.contentType, `The manifest of ${session.what}`);
  let manifestDigest = top.digest;
  let indexDigest: string | null = null;
  if (doc.kind === "index") {
    indexDigest = top.digest;
    const entry = choosePlatform(doc.index.manifests, platform, `Image ${session.what}`);
    const child = await fetchManifest(session, entry.digest, entry.digest, maxManifest);
    const what = `The ${formatPlatform(platform)} manifest of ${session.what}`;
    doc = parseManifestDocument(child.bytes, child.contentType || entry.mediaType || "", what);
    if (doc.kind !== "manifest") throw new RegistryError("invalid_image", `${what} is itself an index; nested indexes are not supported.`);
    manifestDigest = child.digest;
  }
  const { manifest } = doc;

  const configBytes = await fetchConfig(session, manifest, options.maxConfigBytes ?? DEFAULT_MAX_CONFIG_BYTES);
  const { config, diffIds } = parseImageConfig(configBytes, `The config of ${session.what}`);
  if (diffIds.length !== manifest.layers.length) {
    throw new RegistryError("invalid_image", `Image ${session.what} lists ${manifest.layers.length} layers but its config has ${diffIds.length} diff_ids.`);
  }
  return {
    ref: formatReference(ref),
    manifest_digest: manifestDigest,
    index_digest: indexDigest,
    layers: manifest.layers.map((l, i) => ({ digest: l.digest, size: l.size, media_type: l.mediaType ?? "", diff_id: diffIds[i]! })),
    config,
  };
}
