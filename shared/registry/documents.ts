/**
 * @module Parsing the JSON documents of an image — index, manifest, config —
 * with schemas, so nothing from the network is trusted by a cast. The config
 * becomes the protocol's ImageConfig (the fields staging reads) plus the
 * layers' diff_ids.
 */
import { z } from "zod";
import { IMAGE_LIMITS, imageConfigOverLimits, type ExposedPort, type ImageConfig } from "../protocol/image";
import { parseStopSignal } from "../staging/stop-signal";
import { RegistryError } from "./errors";
import { CONFIG_TYPES, INDEX_TYPES, LAYER_TYPES, MANIFEST_TYPES, MEDIA } from "./media-types";

const descriptor = z.object({
  mediaType: z.string().optional(),
  digest: z.string().min(1),
  size: z.number().int().min(0),
  annotations: z.record(z.string(), z.string()).optional(),
});

const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptor.extend({
    platform: z.object({ os: z.string().optional(), architecture: z.string().optional(), variant: z.string().optional() }).optional(),
  })),
});

const manifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptor,
  layers: z.array(descriptor),
});

const stringList = z.array(z.string()).nullish();
const configSchema = z.object({
  config: z.object({
    Env: stringList,
    Entrypoint: stringList,
    Cmd: stringList,
    User: z.string().nullish(),
    WorkingDir: z.string().nullish(),
    ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
    StopSignal: z.string().nullish(),
  }).nullish(),
  rootfs: z.object({ type: z.literal("layers"), diff_ids: z.array(z.string()) }),
});

export type ImageIndex = z.infer<typeof indexSchema>;
export type ImageManifest = z.infer<typeof manifestSchema>;

export type ManifestDocument = { kind: "index"; mediaType: string; index: ImageIndex } | { kind: "manifest"; mediaType: string; manifest: ImageManifest };

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (cause) {
    throw new RegistryError("invalid_image", `${what} is not valid JSON.`, { cause });
  }
}

function checked<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new RegistryError("invalid_image", `${what} is malformed${issue ? ` at ${issue.path.join(".") || "top level"}: ${issue.message}` : ""}.`);
  }
  return r.data;
}

/**
 * Parses a manifest or index. The type comes from Content-Type, else from the
 * body's `mediaType` (OCI manifests may omit it from the body, registries may
 * send a bare application/json).
 */
export function parseManifestDocument(bytes: Uint8Array, contentType: string, what: string): ManifestDocument {
  const json = parseJson(bytes, what);
  const bodyType = typeof json === "object" && json !== null && "mediaType" in json && typeof json.mediaType === "string" ? json.mediaType : undefined;
  const knownType = (t: string | undefined) => t !== undefined && (INDEX_TYPES.has(t) || MANIFEST_TYPES.has(t) || t === MEDIA.dockerSchema1 || t === MEDIA.dockerSchema1Signed);
  let mediaType = knownType(contentType) ? contentType : bodyType;
  if (!mediaType && typeof json === "object" && json !== null) {
    mediaType = "manifests" in json ? MEDIA.ociIndex : "config" in json ? MEDIA.ociManifest : undefined;
  }
  if (mediaType === MEDIA.dockerSchema1 || mediaType === MEDIA.dockerSchema1Signed || (typeof json === "object" && json !== null && "schemaVersion" in json && json.schemaVersion === 1)) {
    throw new RegistryError("unsupported_media_type", `${what} is a Docker schema 1 manifest, which is not supported; push the image again with a current Docker, Buildah or skopeo.`);
  }
  if (mediaType && INDEX_TYPES.has(mediaType)) return { kind: "index", mediaType, index: checked(indexSchema, json, what) };
  if (mediaType && MANIFEST_TYPES.has(mediaType)) {
    const manifest = checked(manifestSchema, json, what);
    if (manifest.config.mediaType && !CONFIG_TYPES.has(manifest.config.mediaType)) {
      throw new RegistryError("unsupported_media_type", `${what} is not a container image (its config is ${manifest.config.mediaType}).`);
    }
    for (const l of manifest.layers) {
      if (!l.mediaType || !LAYER_TYPES.has(l.mediaType)) {
        throw new RegistryError("unsupported_media_type", `${what} has a layer of type ${l.mediaType ?? "(none)"}, which cannot be unpacked (tar, gzip or zstd layers only).`);
      }
    }
    if (manifest.layers.length > IMAGE_LIMITS.layers) {
      throw new RegistryError("too_large", `${what} has ${manifest.layers.length} layers, more than the ${IMAGE_LIMITS.layers} a container's root filesystem can stack.`);
    }
    return { kind: "manifest", mediaType, manifest };
  }
  throw new RegistryError("unsupported_media_type", `${what} has media type ${mediaType ?? contentType ?? "(none)"}, which is not an image manifest or index.`);
}

/** `80/tcp` → {80, tcp}; `80` means tcp; other protocols (sctp) are not routable here and are left out. */
export function parseExposedPorts(keys: readonly string[]): ExposedPort[] {
  const out = new Map<string, ExposedPort>();
  for (const key of keys) {
    const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(key.trim());
    if (!m) continue;
    const port = Number(m[1]);
    const protocol = (m[2] ?? "tcp").toLowerCase();
    if (port < 1 || port > 65535 || (protocol !== "tcp" && protocol !== "udp")) continue;
    out.set(`${port}/${protocol}`, { port, protocol });
  }
  // CF's builder: ascending by port, tcp before udp at the same port.
  return [...out.values()].sort((a, b) => a.port - b.port || (a.protocol === b.protocol ? 0 : a.protocol === "tcp" ? -1 : 1));
}

/** The config blob → the fields staging keeps (within IMAGE_LIMITS), and the layers' diff_ids. */
export function parseImageConfig(bytes: Uint8Array, what: string): { config: ImageConfig; diffIds: string[] } {
  const doc = checked(configSchema, parseJson(bytes, what), what);
  const c = doc.config ?? {};
  const stopSignal = c.StopSignal ? parseStopSignal(c.StopSignal) : null;
  if (c.StopSignal && !stopSignal) throw new RegistryError("invalid_image", `${what} has STOPSIGNAL ${JSON.stringify(c.StopSignal)}, which is not a signal.`);
  const config = {
    env: c.Env ?? [],
    entrypoint: c.Entrypoint ?? [],
    cmd: c.Cmd ?? [],
    user: c.User ?? "",
    workdir: c.WorkingDir ?? "",
    exposed_ports: parseExposedPorts(Object.keys(c.ExposedPorts ?? {})),
    ...(stopSignal ? { stop_signal: stopSignal } : {}),
  };
  const problem = imageConfigOverLimits(config);
  if (problem) throw new RegistryError("too_large", `${what} cannot be staged: ${problem}.`);
  return { config, diffIds: doc.rootfs.diff_ids };
}
