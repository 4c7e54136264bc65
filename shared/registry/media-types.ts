/** @module Manifest, config and layer media types this client understands (OCI image-spec, Docker v2 schema 2). */

export const MEDIA = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
} as const;

/**
 * Sent on every manifest GET. Without it Distribution rewrites manifests to
 * schema 1 on the fly (manifest-v2-2.md, "Backward compatibility").
 */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(", ");

export const INDEX_TYPES: ReadonlySet<string> = new Set([MEDIA.ociIndex, MEDIA.dockerList]);
export const MANIFEST_TYPES: ReadonlySet<string> = new Set([MEDIA.ociManifest, MEDIA.dockerManifest]);
export const CONFIG_TYPES: ReadonlySet<string> = new Set([MEDIA.dockerConfig, MEDIA.ociConfig]);

/** Layer types a cell can apply: tar, gzip or zstd, including the non-distributable (foreign) variants. */
export const LAYER_TYPES: ReadonlySet<string> = new Set([
  "application/vnd.docker.image.rootfs.diff.tar.gzip",
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  "application/vnd.oci.image.layer.v1.tar",
  "application/vnd.oci.image.layer.v1.tar+gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd",
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
]);

/** `application/json; charset=utf-8` → `application/json` (Satellite and others send parameters). */
export const bareMediaType = (contentType: string | null | undefined): string => (contentType ?? "").split(";")[0]!.trim().toLowerCase();
