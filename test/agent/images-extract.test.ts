// Layer extraction against real tarballs on a real filesystem, as root:
// containerd's TestBreakouts by name, the hostile streams (bombs, truncation,
// wrong digests), and the special entries an image may hold.
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { constants as zlib, createZstdCompress } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { native } from "../../agent/native/index";
import { LayerError } from "../../agent/images/layer-error";
import { detectCompression, unpackLayer, type LayerDescriptor } from "../../agent/images/layer-stream";
import { BREAKOUTS, type Check } from "../fixtures/layers/breakouts";
import { layerBlob, tarBuffer, type TarEntry } from "../fixtures/layers/tar";

const LIMITS = { maxFileBytes: 64 << 20, maxUncompressedBytes: 256 << 20, maxEntries: 1000 };
let base: string;

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), "berth-extract-"));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

function fresh(name: string): string {
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function unpack(entries: TarEntry[], dir: string, opts: { compression?: "gzip" | "zstd" | "none"; tweak?: (d: LayerDescriptor) => LayerDescriptor; limits?: typeof LIMITS } = {}) {
  const { blob, descriptor } = layerBlob(await tarBuffer(entries), opts.compression);
  return unpackLayer(Readable.from([blob]), opts.tweak ? opts.tweak(descriptor) : descriptor, dir, opts.limits ?? LIMITS);
}

const getxattr = (path: string, name: string): Buffer | null => native.fsGetXattrs(path)[name] ?? null;
const hashFile = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");

/** Every path under dir with its type and content hash: to prove nothing outside a layer changed. */
function snapshot(dir: string, skip: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (p === skip) continue;
      const st = lstatSync(p);
      out.push(`${p} ${st.mode} ${st.isFile() ? hashFile(p) : ""}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

function runCheck(root: string, check: Check) {
  if ("content" in check) expect(readFileSync(join(root, check.content), "utf8")).toBe(check.equals);
  else if ("absent" in check) expect(existsSync(join(root, check.absent))).toBe(false);
  else {
    const [a, b] = "sameFile" in check ? check.sameFile : check.notSameFile;
    const same = lstatSync(join(root, a)).ino === lstatSync(join(root, b)).ino;
    expect(same).toBe("sameFile" in check);
  }
}

describe("TestBreakouts (containerd), each leaving the host unbroken", () => {
  const hostPasswd = hashFile("/etc/passwd");

  for (const bo of BREAKOUTS) {
    it(bo.name, async () => {
      const caseDir = fresh(bo.name);
      mkdirSync(join(caseDir, "etc"));
      writeFileSync(join(caseDir, "etc", "passwd"), "outside");
      const layer = fresh(`${bo.name}/layer`);
      const before = snapshot(caseDir, layer);

      let lower: string | undefined;
      if (bo.lower) {
        lower = fresh(`${bo.name}/lower`);
        await unpack(bo.lower, lower);
      }
      const outcome = unpack(bo.layer, layer);
      if ("error" in bo.expect) {
        await expect(outcome).rejects.toMatchObject({ name: "LayerError", code: bo.expect.error });
      } else {
        await outcome;
        let root = layer;
        if (lower) {
          root = fresh(`${bo.name}/merged`);
          native.fsMountOverlay(root, [layer, lower], "", "");
        }
        try {
          for (const check of bo.expect.checks) runCheck(root, check);
        } finally {
          if (lower) native.fsUnmount(root, false);
        }
      }
      expect(snapshot(caseDir, layer).filter((l) => !l.includes("/lower") && !l.includes("/merged"))).toEqual(before);
      expect(hashFile("/etc/passwd")).toBe(hostPasswd);
      for (const p of ["/etc/unbroken", "/abs-escape.txt", "/escape.txt", join(base, "escape.txt")]) expect(existsSync(p)).toBe(false);
    });
  }
});

describe("hostile streams", () => {
  it("refuses a file bigger than the disk limit before writing it", async () => {
    const dir = fresh("too-big");
    const big = Buffer.alloc(2 << 20, 1);
    await expect(unpack([{ type: "file", name: "big", body: big }], dir, { limits: { ...LIMITS, maxFileBytes: 1 << 20 } })).rejects.toMatchObject({
      code: "FILE_TOO_LARGE",
    });
    expect(existsSync(join(dir, "big"))).toBe(false);
  });

  it("stops a gzip bomb at the uncompressed cap", async () => {
    const dir = fresh("bomb");
    const zeros = Buffer.alloc(32 << 20);
    const { blob, descriptor } = layerBlob(await tarBuffer([{ type: "file", name: "zeros", body: zeros }]));
    expect(blob.length).toBeLessThan(1 << 20);
    await expect(unpackLayer(Readable.from([blob]), descriptor, dir, { ...LIMITS, maxFileBytes: 1 << 30, maxUncompressedBytes: 4 << 20 })).rejects.toMatchObject({
      code: "LAYER_TOO_LARGE",
    });
  });

  it("refuses a zstd frame that asks the cell for a window over 128 MiB", async () => {
    // A streamed frame keeps the window it was made with (no pledged size to shrink it to).
    const tarball = await tarBuffer([{ type: "file", name: "f", body: "x" }]);
    const big = createZstdCompress({ params: { [zlib.ZSTD_c_windowLog]: 28 } });
    const blob = Buffer.concat(await Array.fromAsync(Readable.from([tarball]).pipe(big)));
    const { descriptor } = layerBlob(tarball, "zstd");
    const d = { ...descriptor, digest: `sha256:${createHash("sha256").update(blob).digest("hex")}`, size: blob.length };
    await expect(unpackLayer(Readable.from([blob]), d, fresh("zstd-window"), LIMITS)).rejects.toMatchObject({ code: "CORRUPT_LAYER" });
  });

  it("reports a truncated gzip stream as corrupt", async () => {
    const dir = fresh("truncated");
    const { blob } = layerBlob(await tarBuffer([{ type: "file", name: "f", body: Buffer.alloc(100_000, 7) }]));
    const cut = blob.subarray(0, blob.length - 40);
    const { descriptor } = layerBlob(Buffer.alloc(0));
    const d = { ...descriptor, digest: `sha256:${createHash("sha256").update(cut).digest("hex")}`, size: cut.length };
    await expect(unpackLayer(Readable.from([cut]), d, dir, LIMITS)).rejects.toMatchObject({ code: "CORRUPT_LAYER" });
  });

  it("passes an error of the blob's own source through as it is, not as a corrupt layer", async () => {
    const { blob, descriptor } = layerBlob(await tarBuffer([{ type: "file", name: "f", body: Buffer.alloc(100_000, 7) }]));
    const failure = new RangeError("a bug upstream of the unpacker");
    async function* source() {
      yield blob.subarray(0, 1000);
      throw failure;
    }
    await expect(unpackLayer(source(), descriptor, fresh("source-error"), LIMITS)).rejects.toBe(failure);
  });

  it("reports a truncated tar as corrupt", async () => {
    const dir = fresh("truncated-tar");
    const tarball = (await tarBuffer([{ type: "file", name: "f", body: Buffer.alloc(100_000, 7) }])).subarray(0, 20_000);
    const { blob, descriptor } = layerBlob(tarball);
    await expect(unpackLayer(Readable.from([blob]), descriptor, dir, LIMITS)).rejects.toMatchObject({ code: "CORRUPT_LAYER" });
  });

  it("checks the blob digest", async () => {
    const wrong = `sha256:${"0".repeat(64)}`;
    await expect(unpack([{ type: "file", name: "f", body: "x" }], fresh("digest"), { tweak: (d) => ({ ...d, digest: wrong }) })).rejects.toMatchObject({
      code: "DIGEST_MISMATCH",
    });
  });

  it("checks the diff_id", async () => {
    const wrong = `sha256:${"1".repeat(64)}`;
    await expect(unpack([{ type: "file", name: "f", body: "x" }], fresh("diffid"), { tweak: (d) => ({ ...d, diff_id: wrong }) })).rejects.toMatchObject({
      code: "DIFF_ID_MISMATCH",
    });
  });

  it("checks the blob size both ways", async () => {
    await expect(unpack([{ type: "file", name: "f", body: "x" }], fresh("short"), { tweak: (d) => ({ ...d, size: d.size - 1 }) })).rejects.toMatchObject({
      code: "SIZE_MISMATCH",
    });
    await expect(unpack([{ type: "file", name: "f", body: "x" }], fresh("long"), { tweak: (d) => ({ ...d, size: d.size + 1 }) })).rejects.toMatchObject({
      code: "SIZE_MISMATCH",
    });
  });

  it("refuses a blob that is not a tar layer", async () => {
    await expect(unpack([], fresh("media"), { tweak: (d) => ({ ...d, media_type: "application/vnd.oci.image.config.v1+json" }) })).rejects.toBeInstanceOf(LayerError);
  });
});

describe("entries", () => {
  const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x20, 0x00, 0x00, 0x80, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
  const special: TarEntry[] = [
    { type: "directory", name: "bin", mode: 0o755 },
    { type: "file", name: "bin/ping", body: "ping", mode: 0o4755, uid: 0, gid: 0, xattrs: { "security.capability": cap } },
    { type: "file", name: "bin/sgid", body: "sgid", mode: 0o2711, uid: 1000, gid: 1001 },
    { type: "directory", name: "tmp", mode: 0o1777 },
    { type: "link", name: "bin/ping-hard", linkname: "bin/ping" },
    { type: "symlink", name: "bin/ping-soft", linkname: "/bin/ping", uid: 1000, gid: 1000 },
    { type: "fifo", name: "tmp/fifo", mode: 0o620 },
    { type: "character-device", name: "dev-null", devmajor: 1, devminor: 3 },
    { type: "file", name: "home/app/.profile", body: "x", uid: 1000, gid: 1000, mtime: new Date("2020-02-02T02:02:02Z") },
    { type: "file", name: "evil", body: "x", xattrs: { "trusted.overlay.redirect": Buffer.from("/etc") } },
  ];

  it.each(["gzip", "zstd", "none"] as const)("writes modes, owners, links, xattrs and times (%s)", async (compression) => {
    const dir = fresh(`special-${compression}`);
    const result = await unpack(special, dir, { compression });
    const st = (p: string) => lstatSync(join(dir, p));
    expect(st("bin/ping").mode & 0o7777).toBe(0o4755);
    expect(getxattr(join(dir, "bin/ping"), "security.capability")).toEqual(cap);
    expect(st("bin/sgid")).toMatchObject({ uid: 1000, gid: 1001 });
    expect(st("bin/sgid").mode & 0o7777).toBe(0o2711);
    expect(st("tmp").mode & 0o7777).toBe(0o1777);
    expect(st("bin/ping-hard").ino).toBe(st("bin/ping").ino);
    expect(st("bin/ping-soft").isSymbolicLink()).toBe(true);
    expect(st("bin/ping-soft")).toMatchObject({ uid: 1000, gid: 1000 });
    expect(st("tmp/fifo").isFIFO()).toBe(true);
    expect(st("tmp/fifo").mode & 0o7777).toBe(0o620);
    expect(existsSync(join(dir, "dev-null"))).toBe(false);
    expect(st("home/app/.profile").mtime.toISOString()).toBe("2020-02-02T02:02:02.000Z");
    expect(getxattr(join(dir, "evil"), "trusted.overlay.redirect")).toBeNull();
    expect(result.dropped.map((d) => d.reason).sort()).toEqual(["device", "overlay-xattr"]);
  });

  it("turns whiteouts into char 0/0 devices and opaque markers into the overlay xattr", async () => {
    const dir = fresh("whiteouts");
    await unpack(
      [
        { type: "directory", name: "a" },
        { type: "file", name: "a/.wh.gone", body: "" },
        { type: "file", name: "a/.wh.kept", body: "" },
        { type: "file", name: "a/kept", body: "this layer's own file wins over its whiteout" },
        { type: "directory", name: "o" },
        { type: "file", name: "o/.wh.before-opaque", body: "" },
        { type: "file", name: "o/.wh..wh..opq", body: "" },
        { type: "file", name: "o/new", body: "new" },
      ],
      dir,
    );
    const gone = lstatSync(join(dir, "a/gone"));
    expect(gone.isCharacterDevice()).toBe(true);
    expect(gone.rdev).toBe(0);
    expect(readFileSync(join(dir, "a/kept"), "utf8")).toContain("wins");
    expect(getxattr(join(dir, "o"), "trusted.overlay.opaque")?.toString()).toBe("y");
    expect(readdirSync(join(dir, "o"))).toEqual(["new"]);
  });

  it("detects compression by magic bytes, media type as the tie-breaker", () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 0x08, 0]), "application/vnd.oci.image.layer.v1.tar")).toBe("gzip");
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), "application/vnd.oci.image.layer.v1.tar+gzip")).toBe("zstd");
    expect(detectCompression(Buffer.from([0x50, 0x2a, 0x4d, 0x18]), "x")).toBe("zstd");
    expect(detectCompression(Buffer.from("abcd"), "application/vnd.oci.image.layer.v1.tar")).toBe("none");
    expect(detectCompression(Buffer.alloc(0), "application/vnd.docker.image.rootfs.diff.tar.gzip")).toBe("gzip");
  });

  it("gives entries the owner and mode the tar says under a setgid directory, whose group and bit new entries would inherit", async () => {
    const dir = fresh("setgid-parent");
    await unpack(
      [
        { type: "directory", name: "shared", mode: 0o2775, uid: 0, gid: 50 },
        { type: "file", name: "shared/root-file", body: "x", mode: 0o644 },
        { type: "directory", name: "shared/sub", mode: 0o755 },
        { type: "file", name: "shared/group-file", body: "y", mode: 0o640, gid: 50 },
      ],
      dir,
    );
    const st = (p: string) => lstatSync(join(dir, p));
    expect(st("shared")).toMatchObject({ uid: 0, gid: 50 });
    expect(st("shared").mode & 0o7777).toBe(0o2775);
    expect(st("shared/root-file")).toMatchObject({ uid: 0, gid: 0 });
    expect(st("shared/sub")).toMatchObject({ uid: 0, gid: 0 });
    expect(st("shared/sub").mode & 0o7777).toBe(0o755);
    expect(st("shared/group-file")).toMatchObject({ uid: 0, gid: 50 });
    expect(st("shared/group-file").mode & 0o7777).toBe(0o640);
  });

  it.each(["gzip", "zstd", "none"] as const)("writes the same tree when the layer cache grants its room a little at a time, and charges each tar byte and entry block once (%s)", async (compression) => {
    const entries: TarEntry[] = [{ type: "directory", name: "d", mode: 0o755 }];
    for (let i = 0; i < 40; i++) entries.push({ type: "file", name: `d/f${i}`, body: Buffer.alloc(1000 + i * 997, i), mode: 0o644 });
    entries.push({ type: "symlink", name: "d/link", linkname: "f1" }, { type: "file", name: "d/.wh.gone", body: "" });
    const tarball = await tarBuffer(entries);
    const whole = fresh(`grants-whole-${compression}`);
    await unpack(entries, whole, { compression });
    const bit = fresh(`grants-bit-${compression}`);
    let granted = 0;
    let asks = 0;
    // 3001 bytes at a time: grants end mid-header, mid-body and between an entry's header and its block.
    const cache = { room: () => 3001, take: (n: number) => void ((granted += n), asks++) };
    const { blob, descriptor } = layerBlob(tarball, compression);
    const chunks = Array.from({ length: Math.ceil(blob.length / 4096) }, (_, i) => blob.subarray(i * 4096, (i + 1) * 4096));
    const result = await unpackLayer(Readable.from(chunks), descriptor, bit, { ...LIMITS, cache });
    const tree = (dir: string) => snapshot(dir, "").map((l) => l.slice(dir.length));
    expect(tree(bit)).toEqual(tree(whole));
    expect(result.entries).toBe(entries.length);
    expect(asks).toBeGreaterThan(tarball.length / 3001);
    // Every byte and block charged was asked for; at most one grant's worth is left unused.
    expect(granted).toBeGreaterThanOrEqual(tarball.length + entries.length * 4096);
    expect(granted).toBeLessThan(tarball.length + entries.length * 4096 + 4096 + 3001);
  });

  it("keeps directory modes and mtimes set after their children", async () => {
    const dir = fresh("dir-times");
    await unpack(
      [
        { type: "directory", name: "ro", mode: 0o555 },
        { type: "file", name: "ro/f", body: "x" },
      ],
      dir,
    );
    const st = statSync(join(dir, "ro"));
    expect(st.mode & 0o7777).toBe(0o555);
    expect(st.mtime.toISOString()).toBe("2026-01-01T00:00:00.000Z");
  });
});
