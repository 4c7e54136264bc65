/**
 * @module Everything a cell can leave on its host, read from the kernel and
 * the state directory and scoped to one cell (its state dir, cgroup parent,
 * nft table, veth prefix and container range), so tests sharing this machine
 * compare only what is theirs. Two snapshots compare with toEqual: any
 * difference names the leak.
 *
 * Spare upper filesystems of the rootfs pool are prepared with random ids and
 * replaced as containers take them, so their ids are written as `*`; spare
 * network namespaces of the network pool (the caller lists them) are written
 * as `(spare)`. Lists keep duplicates: a spare count that grew is still a
 * difference.
 */
import { readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { cidrContains, ipv4ToNumber, parseCidr } from "../../agent/network/ipv4";
import { parseCgroupMounts } from "../../agent/runtime/cgroups";
import { sh } from "./netns";

export interface CellHostScope {
  /** The agent's state directory (the managers' directories are under it). */
  stateDir: string;
  cgroupParent: string;
  /** `berth_<cell>`. */
  tableName: string;
  /** `brt<tag>-`: this cell's host veth ends. */
  vethPrefix: string;
  containerCidr: string;
}

export interface CellHostState {
  /** Host veth ends of this cell. */
  links: string[];
  /** IPv4 addresses in the container range, with their interface. */
  addresses: string[];
  /** The cell's nft table as `nft list table` prints it (rules and map elements), or "absent". */
  nft: string;
  /** Mount points under the state dir, with their filesystem type. */
  mounts: string[];
  /** Loop devices whose backing file is under the state dir. */
  loops: string[];
  /** Hierarchies that have the cgroup parent directory. */
  cgroupParents: string[];
  /** cgroup directories below the parent, on every hierarchy. */
  cgroups: string[];
  /** Processes in those cgroups or whose cwd or root is under the state dir. */
  processes: string[];
  /** The managers' directories and what they hold (a directory ends with /). */
  files: string[];
  /** Containers the layer cache counts as holding a layer. */
  layerHolders: string[];
}

/** Directories of the state dir whose entries are compared (relative; "" is the state dir itself). */
const WATCHED_DIRS = ["", "netns", "network", "network/containers", "rootfs", "rootfs/containers", "rootfs/uppers", "containers", "instances", "log-cursors"];

const UPPER_ID = /(rootfs\/uppers\/)[0-9a-f]{12}/g;
const normalizeUppers = (text: string) => text.replace(UPPER_ID, "$1*");

async function entries(dir: string): Promise<string[] | null> {
  return readdir(dir).catch(() => null);
}

async function cgroupMounts(): Promise<string[]> {
  const { v1, v2 } = parseCgroupMounts(await readFile("/proc/self/mountinfo", "utf8"));
  return [...new Set([...v1.values(), ...(v2 ? [v2] : [])])].sort();
}

/** Every directory below `dir` (depth first), as absolute paths. */
async function subdirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (!e.isDirectory()) continue;
    out.push(join(dir, e.name), ...(await subdirs(join(dir, e.name))));
  }
  return out;
}

async function processName(pid: string): Promise<string> {
  return (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "?")).trim();
}

async function pidsUnder(stateDir: string): Promise<string[]> {
  const inside = (p: string | null) => p !== null && (p === stateDir || p.startsWith(`${stateDir}/`));
  const pids = (await readdir("/proc")).filter((p) => /^\d+$/.test(p));
  const found = await Promise.all(
    pids.map(async (pid) => {
      const [cwd, root] = await Promise.all([readlink(`/proc/${pid}/cwd`).catch(() => null), readlink(`/proc/${pid}/root`).catch(() => null)]);
      return inside(cwd) || inside(root) ? pid : null;
    }),
  );
  return found.filter((p): p is string => p !== null);
}

/** `spareLinks`: host veth ends of the network pool's prepared namespaces (NetworkManager.spares()). */
export async function cellHostState(scope: CellHostScope, spareLinks: readonly string[] = []): Promise<CellHostState> {
  const { stateDir } = scope;
  const under = (p: string) => p === stateDir || p.startsWith(`${stateDir}/`);
  const range = parseCidr(scope.containerCidr);
  const spare = new Set(spareLinks);
  // Spare namespace files are `_<host veth end>`.
  const normalize = (text: string) => normalizeUppers(text).replace(/\/_([a-z0-9-]+)/g, (m, link: string) => (spare.has(link) ? "/_(spare)" : m));

  const netDev = await readFile("/proc/self/net/dev", "utf8");
  const links = netDev.split("\n").slice(2).map((l) => l.split(":")[0]!.trim()).filter((n) => n.startsWith(scope.vethPrefix));
  const addresses = (await sh(["ip", "-4", "-o", "addr"])).split("\n").filter(Boolean).flatMap((line) => {
    const [, ifname, , cidr] = line.split(/\s+/);
    if (!cidr || !cidrContains(range, ipv4ToNumber(cidr.split("/")[0]!))) return [];
    return [spare.has(ifname!) ? "(spare)" : `${ifname} ${cidr}`];
  });
  const nft = await sh(["nft", "list", "table", "inet", scope.tableName]).catch(() => "absent");

  const mounts = (await readFile("/proc/self/mountinfo", "utf8")).split("\n").flatMap((line) => {
    const sep = line.indexOf(" - ");
    if (sep < 0) return [];
    const mountPoint = line.slice(0, sep).split(" ")[4]!;
    return under(mountPoint) ? [normalize(`${mountPoint} ${line.slice(sep + 3).split(" ")[0]}`)] : [];
  });
  const loops: string[] = [];
  for (const dev of (await entries("/sys/block")) ?? []) {
    const backing = (await readFile(`/sys/block/${dev}/loop/backing_file`, "utf8").catch(() => "")).trim();
    if (backing && under(backing.replace(/ \(deleted\)$/, ""))) loops.push(normalize(backing));
  }

  const cgroupParents: string[] = [];
  const cgroups: string[] = [];
  const cgroupPids: string[] = [];
  for (const mount of await cgroupMounts()) {
    const parent = join(mount, scope.cgroupParent);
    if ((await entries(parent)) === null) continue;
    cgroupParents.push(parent);
    const below = await subdirs(parent);
    cgroups.push(...below);
    for (const dir of [parent, ...below]) cgroupPids.push(...(await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "")).split("\n").filter(Boolean));
  }
  const pids = [...new Set([...cgroupPids, ...(await pidsUnder(stateDir))])];
  const processes = await Promise.all(pids.map(async (pid) => `${pid} ${await processName(pid)}`));

  const files: string[] = [];
  for (const rel of WATCHED_DIRS) {
    const names = await entries(join(stateDir, rel));
    if (names === null) continue;
    files.push(`${rel}/`, ...names.map((n) => normalize(`/${rel}/${n}`).replace(/^\/+/, "")));
  }
  const cacheState = JSON.parse(await readFile(join(stateDir, "layers", "state.json"), "utf8").catch(() => "{}")) as {
    layers?: Record<string, { holders: string[] }>;
  };
  const layerHolders = Object.entries(cacheState.layers ?? {}).flatMap(([key, r]) => r.holders.map((h) => `${key} ${h}`));

  const sorted = (xs: string[]) => [...new Set(xs)].sort();
  return {
    links: links.map((l) => (spare.has(l) ? "(spare)" : l)).sort(),
    addresses: addresses.sort(),
    nft,
    mounts: mounts.sort(),
    loops: loops.sort(),
    cgroupParents: sorted(cgroupParents),
    cgroups: sorted(cgroups),
    processes: sorted(processes),
    files: files.sort(),
    layerHolders: sorted(layerHolders),
  };
}
