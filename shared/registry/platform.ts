/**
 * @module Choosing one image from a multi-platform index (image-spec
 * image-index.md): the first entry matching os, architecture and (when asked)
 * variant wins; attestation entries (`unknown/unknown`) never match.
 */
import { RegistryError } from "./errors";

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** What the Worker stages for: cells of this project run linux/amd64 unless they pull for themselves. */
export const DEFAULT_PLATFORM: Platform = { os: "linux", architecture: "amd64" };

export interface IndexEntry {
  digest: string;
  mediaType?: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

export const formatPlatform = (p: Platform): string => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;

/** The first entry for `want`, or a not_found error listing what the index offers. */
export function choosePlatform(entries: readonly IndexEntry[], want: Platform, what: string): IndexEntry {
  const found = entries.find((e) =>
    e.platform?.os === want.os &&
    e.platform.architecture === want.architecture &&
    (want.variant === undefined || e.platform.variant === want.variant) &&
    e.annotations?.["vnd.docker.reference.type"] !== "attestation-manifest");
  if (found) return found;
  const offered = entries
    .filter((e) => e.platform?.os && e.platform.architecture && e.platform.os !== "unknown")
    .map((e) => formatPlatform({ os: e.platform!.os!, architecture: e.platform!.architecture!, variant: e.platform!.variant }));
  throw new RegistryError("not_found", `${what} has no ${formatPlatform(want)} image (it offers ${offered.length ? offered.join(", ") : "no runnable platform"}).`);
}

/** Node's `process.arch` → the OCI platform (a pure mapping, so cells can call it without shared/ importing node:). */
export function platformForNodeArch(arch: string): Platform {
  const map: Record<string, Platform> = {
    x64: { os: "linux", architecture: "amd64" },
    arm64: { os: "linux", architecture: "arm64" },
    arm: { os: "linux", architecture: "arm", variant: "v7" },
    ia32: { os: "linux", architecture: "386" },
    ppc64: { os: "linux", architecture: "ppc64le" },
    s390x: { os: "linux", architecture: "s390x" },
    riscv64: { os: "linux", architecture: "riscv64" },
  };
  return map[arch] ?? { os: "linux", architecture: arch };
}
