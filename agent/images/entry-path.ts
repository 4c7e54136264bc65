/**
 * @module Pure rules for tar entry names: cleaning, refusing escapes and
 * recognising OCI whiteouts (image-spec layer.md §Whiteouts). The writer
 * (native openat2 with RESOLVE_IN_ROOT) is a second line of defence; these
 * rules make the hostile cases fail early with a clear error.
 */
import { LayerError } from "./layer-error";

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE = ".wh..wh..opq";

/**
 * Cleans a tar name into a relative path ("" is the layer root). A leading
 * `/` means the layer root (as containerd and umoci read it: "/etc/passwd" is
 * "etc/passwd"). Any `..` that climbs above the root is refused rather than
 * clamped: a layer holding such names was not made by a sane tool.
 */
export function cleanEntryPath(name: string, what = "entry"): string {
  if (name.includes("\0")) throw new LayerError("PATH_ESCAPE", `${what} ${JSON.stringify(name)} contains a NUL byte`);
  const parts: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (parts.length === 0) throw new LayerError("PATH_ESCAPE", `${what} ${JSON.stringify(name)} leaves the layer root`);
      parts.pop();
    } else parts.push(part);
  }
  return parts.join("/");
}

export type Whiteout =
  | { kind: "opaque"; dir: string }
  /** `.wh..wh.plnk` and the like: AUFS bookkeeping, never meant for the rootfs. */
  | { kind: "aufs"; dir: string }
  | { kind: "whiteout"; dir: string; target: string };

/** Splits "a/b/c" into ["a/b", "c"]. */
export function splitPath(rel: string): [dir: string, base: string] {
  const slash = rel.lastIndexOf("/");
  return slash === -1 ? ["", rel] : [rel.slice(0, slash), rel.slice(slash + 1)];
}

export function joinPath(dir: string, base: string): string {
  return dir === "" ? base : `${dir}/${base}`;
}

/** What a cleaned entry path means as a whiteout, or null for a plain entry. */
export function parseWhiteout(rel: string): Whiteout | null {
  const [dir, base] = splitPath(rel);
  if (!base.startsWith(WHITEOUT_PREFIX)) return null;
  if (base === OPAQUE) return { kind: "opaque", dir };
  if (base.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) return { kind: "aufs", dir };
  const target = base.slice(WHITEOUT_PREFIX.length);
  // cleanEntryPath already split on "/", so only these can escape the directory.
  if (target === "" || target === "." || target === "..")
    throw new LayerError("BAD_WHITEOUT", `whiteout ${JSON.stringify(rel)} does not name an entry of its directory`);
  return { kind: "whiteout", dir, target };
}
