/**
 * @module Writes one uncompressed layer tar into its own directory, in the
 * form overlayfs reads as a lower layer: whiteouts become char 0/0 devices,
 * opaque markers the `trusted.overlay.opaque=y` xattr.
 *
 * Every write goes through the native addon's openat2-confined calls, so a
 * symlink in the tree can never carry a later entry outside the directory;
 * names that try to leave it are refused by entry-path.ts before that.
 * Ids are written as the tar says (idmapped mounts shift them at mount time)
 * unless `idShift` asks for the chown fallback.
 */
import { closeSync, writeSync } from "node:fs";
import type { Readable } from "node:stream";
import tar, { type Header as TarHeader } from "tar-stream";
import { native } from "../native/index";
import { isNativeError } from "../native/errors";
import type { EntryMeta } from "../native/fs";
import { cleanEntryPath, joinPath, parseWhiteout, splitPath } from "./entry-path";
import type { SpaceCharge } from "./image-budget";
import { LayerError } from "./layer-error";
import { XATTR_PREFIX } from "./tar-pax";

export interface ExtractOptions {
  /** The disk limit: no single file may be bigger. */
  maxFileBytes: number;
  /** Entries one layer may hold: per-entry bookkeeping grows with them. */
  maxEntries: number;
  /** What the whole image and the layer cache may still take, shared by the layers of one pull (image-budget.ts). */
  image?: SpaceCharge;
  /** Added to every uid/gid: the chown fallback for kernels without idmapped mounts. */
  idShift?: number;
}

/** An entry deliberately not written, and why (see DROP_REASONS). */
export interface DroppedEntry {
  path: string;
  reason: keyof typeof DROP_REASONS;
}

/** Every kind of entry or attribute the extractor leaves out, in one place. */
export const DROP_REASONS = {
  device:
    "character and block devices are not created: containers run in a user namespace where device nodes " +
    "from an image could not be opened anyway, and the runtime bind-mounts the few /dev nodes a container gets",
  "overlay-xattr":
    "trusted.overlay.* xattrs from a layer are dropped: they would let an image forge overlayfs metadata " +
    "(redirects, opaque flags, origins) instead of using OCI whiteouts",
  aufs: "AUFS bookkeeping entries (.wh..wh.plnk, .wh..wh.aufs) are not part of the filesystem",
  "xattr-refused": "the host filesystem refused this xattr (ENOTSUP/EPERM); tolerated like containerd does",
} as const;

export interface ExtractResult {
  entries: number;
  /** Bytes of regular file content written. */
  bytes: number;
  dropped: DroppedEntry[];
}

const OPAQUE_XATTR = "trusted.overlay.opaque";

/**
 * Bytes of names the writer keeps per layer (paths it created, directories
 * whose times it sets last, whiteouts, dropped entries): with names up to
 * PATH_MAX, the entry cap alone would still let a layer make it keep GiBs.
 */
export const MAX_KEPT_NAME_BYTES = 16 << 20;
/** Linux's PATH_MAX: a longer name could not be created anyway. */
const PATH_MAX = 4096;

type Header = Omit<TarHeader, "pax" | "type"> & { type: string; pax?: Record<string, string> | null };

function entryMeta(h: Header, shift: number): EntryMeta {
  const pax = h.pax ?? {};
  const xattrs: Array<[string, Buffer]> = [];
  for (const [key, value] of Object.entries(pax)) {
    if (key.startsWith(XATTR_PREFIX)) xattrs.push([key.slice(XATTR_PREFIX.length), Buffer.from(value, "latin1")]);
  }
  return {
    uid: (h.uid ?? 0) + shift,
    gid: (h.gid ?? 0) + shift,
    mode: (h.mode ?? 0o644) & 0o7777,
    mtimeNs: paxTimeNs(pax.mtime) ?? BigInt(h.mtime?.getTime() ?? 0) * 1_000_000n,
    atimeNs: paxTimeNs(pax.atime),
    xattrs,
  };
}

/** PAX times are decimal seconds with up to nanosecond fractions ("1700000000.123456789"). */
function paxTimeNs(value: string | undefined): bigint | undefined {
  if (!value || !/^-?\d+(\.\d+)?$/.test(value)) return undefined;
  const [sec, frac = ""] = value.split(".");
  return BigInt(sec!) * 1_000_000_000n + BigInt((frac + "000000000").slice(0, 9));
}

/**
 * Extracts `tarStream` (uncompressed) into `dir`, which must exist and be
 * empty. Resolves when the whole archive is written; rejects with a
 * {@link LayerError} on hostile or broken input (the caller discards `dir`).
 */
export async function extractLayer(tarStream: AsyncIterable<Buffer>, dir: string, opts: ExtractOptions): Promise<ExtractResult> {
  const root = native.fsOpenRoot(dir);
  try {
    return await new LayerWriter(root, opts).run(tarStream);
  } finally {
    closeSync(root);
  }
}

class LayerWriter {
  private readonly shift: number;
  private readonly result: ExtractResult = { entries: 0, bytes: 0, dropped: [] };
  /** Directories get their metadata again last (without xattrs, set at mkdir): writing children changes their mtimes. */
  private readonly dirMeta = new Map<string, EntryMeta>();
  /** Bytes of names held by the sets and maps here (MAX_KEPT_NAME_BYTES). */
  private keptNameBytes = 0;
  /** Paths this layer created, so a whiteout never hides the layer's own entry. */
  private readonly created = new Set<string>();
  /** Whiteout devices made per directory, removed again if the directory turns opaque. */
  private readonly whiteouts = new Map<string, string[]>();
  private readonly opaque = new Set<string>();

  constructor(
    private readonly root: number,
    private readonly opts: ExtractOptions,
  ) {
    this.shift = opts.idShift ?? 0;
  }

  async run(tarStream: AsyncIterable<Buffer>): Promise<ExtractResult> {
    const extract = tar.extract();
    const feeding = feed(tarStream, extract);
    try {
      for await (const entry of extract) {
        const charged = this.count(entry.header.name);
        if (charged) await charged;
        await this.write(entry.header as Header, entry as AsyncIterable<Buffer>);
      }
    } catch (err) {
      extract.destroy(err as Error);
      await feeding.catch(() => undefined);
      throw asLayerError(err);
    }
    await feeding;
    for (const [rel, meta] of [...this.dirMeta].reverse()) this.setMeta(rel, meta);
    return this.result;
  }

  /** Refuses the entry past the layer's or the image's entry cap, or with a name no filesystem takes; then charges it. */
  private count(name: string): void | Promise<void> {
    if (++this.result.entries > this.opts.maxEntries)
      throw new LayerError("TOO_MANY_ENTRIES", `the layer holds more than ${this.opts.maxEntries} entries`);
    if (Buffer.byteLength(name) > PATH_MAX)
      throw new LayerError("NAME_TOO_LONG", `entry ${JSON.stringify(name.slice(0, 64) + "…")} has a name over ${PATH_MAX} bytes`);
    return this.opts.image?.takeEntry();
  }

  /** Accounts for a name kept until the end of the layer. */
  private keep(rel: string): string {
    this.keptNameBytes += rel.length;
    if (this.keptNameBytes > MAX_KEPT_NAME_BYTES)
      throw new LayerError("TOO_MANY_ENTRIES", `the layer's entries name more than ${MAX_KEPT_NAME_BYTES} bytes of paths`);
    return rel;
  }

  private async write(h: Header, body: AsyncIterable<Buffer>): Promise<void> {
    const rel = cleanEntryPath(h.name);
    const whiteout = rel === "" ? null : parseWhiteout(rel);
    if (whiteout) {
      await drain(body);
      if (whiteout.kind === "opaque") this.markOpaque(whiteout.dir);
      else if (whiteout.kind === "whiteout") this.whiteout(whiteout.dir, whiteout.target);
      else this.drop(rel, "aufs");
      return;
    }
    if (rel === "") {
      // The layer root itself ("./"): overlay takes the root's attributes from the upper dir.
      await drain(body);
      return;
    }
    const meta = entryMeta(h, this.shift);
    const n = native;
    switch (h.type) {
      case "directory":
        await drain(body);
        n.fsMkdir(this.root, rel, 0o700);
        // Xattrs now, so what is kept for the end stays a few bytes per directory.
        this.setMeta(rel, meta);
        if (!this.dirMeta.delete(rel)) this.keep(rel);
        this.dirMeta.set(rel, { ...meta, xattrs: [] });
        break;
      case "file":
      case "contiguous-file":
        await this.writeFile(rel, h.size ?? 0, body);
        this.setMeta(rel, meta);
        break;
      case "symlink":
        await drain(body);
        n.fsSymlink(this.root, rel, h.linkname ?? "");
        this.setMeta(rel, meta);
        break;
      case "link": {
        await drain(body);
        const target = cleanEntryPath(h.linkname ?? "", "hard link target of " + JSON.stringify(h.name));
        try {
          n.fsLink(this.root, rel, target);
        } catch (err) {
          if (!isNativeError(err) || (err.code !== "ENOENT" && err.code !== "EPERM")) throw err;
          // Hard links across layers "may fail" (image-spec layer.md); links to directories never work.
          throw new LayerError("HARDLINK_TARGET", `hard link ${JSON.stringify(rel)} points to ${JSON.stringify(target)}, which is not a file of this layer`, { cause: err });
        }
        break;
      }
      case "fifo":
        await drain(body);
        n.fsMknod(this.root, rel, "fifo");
        this.setMeta(rel, meta);
        break;
      case "character-device":
      case "block-device":
        await drain(body);
        this.drop(rel, "device");
        return;
      default:
        throw new LayerError("UNSUPPORTED_ENTRY", `entry ${JSON.stringify(rel)} has unsupported tar type ${String(h.type)}`);
    }
    if (!this.created.has(rel)) this.created.add(this.keep(rel));
  }

  private drop(path: string, reason: DroppedEntry["reason"]): void {
    this.result.dropped.push({ path: this.keep(path), reason });
  }

  private async writeFile(rel: string, size: number, body: AsyncIterable<Buffer>): Promise<void> {
    if (size > this.opts.maxFileBytes)
      throw new LayerError("FILE_TOO_LARGE", `file ${JSON.stringify(rel)} is ${size} bytes, over the disk limit of ${this.opts.maxFileBytes}`);
    const fd = native.fsCreateFile(this.root, rel);
    try {
      for await (const chunk of body) {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
        this.result.bytes += chunk.length;
      }
    } finally {
      closeSync(fd);
    }
  }

  private setMeta(rel: string, meta: EntryMeta): void {
    const xattrs = meta.xattrs?.filter(([name]) => {
      if (!name.startsWith("trusted.overlay.")) return true;
      this.drop(`${rel} (${name})`, "overlay-xattr");
      return false;
    });
    const extra = this.opaque.has(rel) ? [[OPAQUE_XATTR, Buffer.from("y")] as [string, Buffer]] : [];
    const refused = native.fsSetMeta(this.root, rel, { ...meta, xattrs: [...(xattrs ?? []), ...extra] });
    for (const name of refused) this.drop(`${rel} (${name})`, "xattr-refused");
  }

  private whiteout(dir: string, target: string): void {
    const rel = joinPath(dir, target);
    // A whiteout hides lower layers only; this layer's own entry (or an opaque dir) wins.
    if (this.created.has(rel) || this.opaque.has(dir)) return;
    native.fsMknod(this.root, rel, "whiteout");
    this.whiteouts.set(dir, [...(this.whiteouts.get(dir) ?? []), this.keep(rel)]);
  }

  private markOpaque(dir: string): void {
    if (dir !== "" && !this.created.has(dir)) {
      native.fsMkdir(this.root, dir, 0o755);
      this.created.add(this.keep(dir));
    }
    // Plain whiteouts under an opaque directory would show up in readdir (umoci's overlayfsWhiteout).
    for (const rel of this.whiteouts.get(dir) ?? []) native.fsRemove(this.root, rel);
    this.whiteouts.delete(dir);
    if (!this.opaque.has(dir)) this.opaque.add(this.keep(dir));
    native.fsSetXattr(this.root, dir, OPAQUE_XATTR, Buffer.from("y"));
  }
}

/** Writes every chunk into the tar parser with backpressure, then ends it. */
async function feed(source: AsyncIterable<Buffer>, extract: tar.Extract): Promise<void> {
  const stopped = () => new LayerError("CORRUPT_LAYER", "the tar parser stopped before the end of the stream");
  try {
    for await (const chunk of source) {
      if (extract.destroyed) throw stopped();
      if (extract.write(chunk)) continue;
      await new Promise<void>((resolve) => {
        const done = () => {
          extract.off("drain", done);
          extract.off("close", done);
          resolve();
        };
        extract.on("drain", done);
        extract.on("close", done);
      });
      if (extract.destroyed) throw stopped();
    }
    extract.end(null); // streamx: end(data), null meaning no final chunk
  } catch (err) {
    extract.destroy(err as Error);
    throw err;
  }
}

async function drain(body: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of body);
}

function asLayerError(err: unknown): Error {
  if (err instanceof LayerError || isNativeError(err)) return err; // a native error already names its path and syscall
  return new LayerError("CORRUPT_LAYER", `invalid layer tar: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
