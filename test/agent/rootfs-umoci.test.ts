// umoci as the oracle: for every fixture image, the root filesystem Berth
// mounts, seen from inside the container's user namespace (paths, types,
// modes, owners, sizes, content hashes, link targets, capability and user
// xattrs), equals what `umoci unpack` writes for the same image pulled by
// skopeo. umoci 0.4.7 refuses zstd, so a zstd image is compared with its
// gzip twin (same diff_ids). Every allowed difference is in UMOCI_DIFFERENCES.
import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { ImageStore } from "../../agent/images/image-store";
import { LayerCache } from "../../agent/images/layer-cache";
import { RootfsManager } from "../../agent/rootfs/rootfs-manager";
import { inUserns, loopbackImageStore, resolveInstanceImage } from "../fixtures/layers/harness";
import { pushOciImage, writeOciImage } from "../fixtures/layers/oci-image";
import { specialTarballs } from "../fixtures/layers/special-image";
import { applyUmociDifferences, type TreeEntry } from "../fixtures/layers/umoci-differences";

const run = promisify(execFile);
const registry = inject("registry");
const IDS = { hostId: 400000, size: 65536 };
const WALKER_SOURCE = join(import.meta.dirname, "../fixtures/layers/walk-tree.mjs");
/** Copies (node, walker and addon) under the test's own 0755 directory: the checkout, and the Node setup.sh brings into it, may sit where container root cannot reach (a 0700 clone). */
let NODE: string;
let WALKER: string;
let ADDON: string;
let base: string;
let manager: RootfsManager;
let images: ImageStore;
const special = `berth-special-${randomBytes(4).toString("hex")}`;

const parse = (out: string): TreeEntry[] => out.trim().split("\n").map((l) => JSON.parse(l) as TreeEntry);

/** The tree as the container sees it: the walker runs as container root inside the user namespace. */
async function walkInUserns(path: string): Promise<TreeEntry[]> {
  const r = await inUserns(IDS, [NODE, WALKER, path, ADDON]);
  if (r.status !== 0) throw new Error(`walker failed (${r.status}): ${r.stderr}`);
  return parse(r.stdout);
}

async function umociTree(name: string): Promise<TreeEntry[]> {
  const dir = mkdtempSync(join(base, `umoci-${name}-`));
  await run("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${registry.host}/${name}:latest`, `oci:${dir}/layout:t`]);
  await run("umoci", ["unpack", "--image", `${dir}/layout:t`, `${dir}/bundle`]);
  return parse((await run(process.execPath, [WALKER, `${dir}/bundle/rootfs`, ADDON], { maxBuffer: 64 << 20 })).stdout);
}

async function berthTree(name: string): Promise<TreeEntry[]> {
  const id = `cmp-${name}-${randomBytes(3).toString("hex")}`;
  const layers = await images.pull(await resolveInstanceImage(`${registry.host}/${name}:latest`), { holder: id });
  const rootfs = await manager.create(id, layers.map((l) => l.path), { ids: IDS, diskMb: 16 });
  try {
    return await walkInUserns(rootfs.path);
  } finally {
    await rootfs.destroy();
    await images.release(id);
  }
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), "berth-umoci-"));
  chmodSync(base, 0o755);
  NODE = join(base, "node");
  copyFileSync(process.execPath, NODE);
  chmodSync(NODE, 0o755);
  WALKER = join(base, "walk-tree.mjs");
  copyFileSync(WALKER_SOURCE, WALKER);
  ADDON = join(base, "berth_native.node");
  copyFileSync(join(import.meta.dirname, "../../agent/native/build/Release/berth_native.node"), ADDON);
  manager = await RootfsManager.open(join(base, "rootfs"), { spares: 1 });
  images = loopbackImageStore(await LayerCache.open(join(base, "cache")));
  const layout = join(base, "special-layout");
  const tarballs = await specialTarballs();
  await writeOciImage(layout, "latest", tarballs, "gzip");
  await pushOciImage(layout, "latest", registry.host, special);
  await writeOciImage(layout, "latest", tarballs, "zstd");
  await pushOciImage(layout, "latest", registry.host, `${special}-zstd`);
});
afterAll(async () => {
  await manager.close();
  rmSync(base, { recursive: true, force: true });
});

describe("root filesystem equals umoci unpack", () => {
  const cases: [berth: () => string, oracle: () => string][] = [
    [() => "layers", () => "layers"],
    [() => "httpd", () => "httpd"],
    [() => "httpd-zstd", () => "httpd"],
    [() => special, () => special],
    [() => `${special}-zstd`, () => special],
  ];
  it.each(cases.map(([b, o], i) => [["layers", "httpd", "httpd-zstd", "special", "special-zstd"][i]!, b, o] as const))("%s", async (_label, berth, oracle) => {
    const [ours, theirs] = await Promise.all([berthTree(berth()), umociTree(oracle())]);
    expect(ours.length).toBeGreaterThan(10);
    expect(ours).toEqual(applyUmociDifferences(theirs));
  });

  it("sees the special image's capabilities, setuid bits, owners and links inside the user namespace", async () => {
    const tree = new Map((await berthTree(special)).map((e) => [e.path, e]));
    expect(tree.get("/bin/ping")).toMatchObject({ mode: "4755", uid: 0, xattrs: [expect.stringMatching(/^security\.capability=0100000280200000/)] });
    expect(tree.get("/bin/ping6")?.nlink).toBe(2);
    expect(tree.get("/home/app/nobody")).toMatchObject({ uid: 65534, gid: 65534 });
    expect(tree.get("/home/app")).toMatchObject({ uid: 1000, gid: 1000, mode: "750" });
    expect(tree.has("/bin/sgid")).toBe(false);
    expect(tree.get("/usr/lib")?.type).toBe("file");
    expect(tree.get("/usr/become-dir")?.type).toBe("dir");
    expect(tree.get("/etc/dangling")).toMatchObject({ type: "symlink", link: "/nowhere/at/all" });
    expect(tree.has("/dev/null")).toBe(false);
    expect((await umociTree(special)).find((e) => e.path === "/dev/null")?.type).toBe("char");
    expect([...tree.keys()].filter((p) => p.startsWith("/etc/opq/"))).toEqual(["/etc/opq/new"]);
  });
});
