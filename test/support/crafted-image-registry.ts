/**
 * @module A registry serving one image made up on the spot, for images no
 * build tool would push: a config of any shape (100 000 Env entries) or a
 * manifest with hundreds of layers. Serves `/v2/`, every manifest request
 * with the manifest, and the config blob by its digest; layers are only
 * named (staging never fetches them).
 */
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { listenOnLoopback, type LoopbackServer } from "./loopback-server";

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

export async function startCraftedImageRegistry(image: { config: Record<string, unknown>; layers: number }): Promise<LoopbackServer> {
  const diffIds = Array.from({ length: image.layers }, (_, i) => sha256(Buffer.from(`diff ${i}`)));
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: image.config, rootfs: { type: "layers", diff_ids: diffIds } }));
  const configDigest = sha256(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
    layers: Array.from({ length: image.layers }, (_, i) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(Buffer.from(`layer ${i}`)), size: 100 })),
  }));
  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url === "/v2/") return void res.end("{}");
    if (url.includes("/manifests/")) {
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "docker-content-digest": sha256(manifest) });
      return void res.end(manifest);
    }
    if (url.endsWith(`/blobs/${configDigest}`)) return void res.end(config);
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ errors: [{ code: "BLOB_UNKNOWN" }] }));
  });
  return listenOnLoopback(server);
}
