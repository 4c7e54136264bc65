/**
 * @module Decommissioning a cell's host (kubeadm reset's place): after the
 * cell was drained and its agent stopped, removes every per-cell resource the
 * agent made — what dead containers left (cgroups, root filesystems, network
 * namespaces and veths), the spare upper filesystems and their loop devices,
 * the nft table, the netns run dir's bind mount, the parent cgroup
 * directories on every hierarchy, ip_forward if Berth turned it on and no
 * other cell needs it, and the agent's files in the state dir (identity,
 * layer cache, records). Refused while the agent or any container still
 * runs. Idempotent: a second run finds nothing and succeeds.
 *
 * @example
 * await teardownCell({ name: "cell-1", state_dir: "/var/lib/berth", cgroup_parent: "berth" });
 */
import { existsSync } from "node:fs";
import { readFile, readdir, rm, rmdir } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { z } from "zod";
import type { TeardownConfig } from "../config";
import { decommissionNetwork } from "../network/decommission";
import { liveOwner, ownerFile } from "../rootfs/root-lock";
import { RootfsManager } from "../rootfs/rootfs-manager";
import { Runtime } from "../runtime/runtime";
import { cellHostLayout } from "./host-layout";

export class TeardownRefusedError extends Error {
  constructor(
    readonly code: "agent_running" | "containers_running",
    message: string,
    /** The agent's pid, or the ids of the containers still running. */
    readonly running: string[],
  ) {
    super(message);
    this.name = "TeardownRefusedError";
  }
}

export interface TeardownReport {
  /** Containers whose remains (their processes had ended) were removed. */
  removedContainers: string[];
  /** Entries of the state dir that are not the agent's and were left (the dir itself stays with them). */
  leftInStateDir: string[];
}

/** What the agent keeps directly in its state dir besides the layout's directories. */
const AGENT_FILES = ["cell.json", "instances", "log-cursors"];

export async function teardownCell(config: TeardownConfig): Promise<TeardownReport> {
  const paths = cellHostLayout(config);
  // The resources are found by the cell's name: a wrong one would remove the files and miss the rest.
  const registered = await registeredName(config.state_dir);
  if (registered !== null && registered !== config.name) {
    throw new Error(`${config.state_dir} belongs to cell ${JSON.stringify(registered)}, not ${JSON.stringify(config.name)}`);
  }
  // Removed at the end; the network's two directories go with decommissionNetwork.
  const agentFiles = [paths.layers, paths.rootfs, paths.containers, ...AGENT_FILES.map((f) => join(config.state_dir, f))];
  // What teardown deletes goes by common names (containers/, layers/…): in a dir no agent marked
  // (a mistyped --state-dir such as /var/lib) they may be someone else's.
  const marked = registered !== null || existsSync(ownerFile(paths.rootfs));
  const present = [...agentFiles, paths.networkState, paths.netnsRunDir].filter((p) => existsSync(p));
  if (!marked && present.length > 0) {
    throw new Error(`${config.state_dir} has no cell.json nor rootfs/owner.json, so it is no cell's state dir; nothing removed (it holds ${present.map((p) => basename(p)).join(", ")})`);
  }
  const owner = await liveOwner(paths.rootfs);
  // The owner itself may tear down (an agent process, or a test, that is done with the cell).
  if (owner !== null && owner !== process.pid) {
    throw new TeardownRefusedError("agent_running", `the cell agent of ${config.state_dir} still runs (pid ${owner}): stop it first`, [String(owner)]);
  }
  const runtime = await Runtime.open({ stateDir: paths.containers, cgroupParent: config.cgroup_parent });
  const running = await runtime.running();
  if (running.length > 0) {
    throw new TeardownRefusedError(
      "containers_running",
      `containers of cell ${config.name} still run: ${running.join(", ")}; drain the cell and let its agent stop them before you stop the agent`,
      running,
    );
  }

  // Whatever dead containers left, each part by its own manager: cgroups and runtime state…
  const removedContainers = await runtime.list();
  for (const id of removedContainers) await (await runtime.adopt(id))?.destroy();
  // …root filesystems (opening the manager discards the spare uppers a killed agent left mounted)…
  if (existsSync(paths.rootfs)) {
    const rootfs = await RootfsManager.open(paths.rootfs);
    for (const id of await rootfs.list()) await rootfs.destroy(id);
    await rootfs.close();
  }
  // …and networks, found by the cell's names.
  await decommissionNetwork({ cellName: paths.cellName, ifTag: paths.ifTag, runDir: paths.netnsRunDir, stateDir: paths.networkState });
  await runtime.removeCgroupParents();

  // Removing a tree that still holds a mount would delete through it.
  const mounted = await mountsUnder(config.state_dir);
  if (mounted.length > 0) throw new Error(`teardown left mounts under ${config.state_dir}: ${mounted.join(", ")}`);
  for (const p of agentFiles) await rm(p, { recursive: true, force: true });
  const leftInStateDir = await readdir(config.state_dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return [];
    throw e;
  });
  // EBUSY: the state dir is a mount point (a volume of its own), which stays with the host.
  if (leftInStateDir.length === 0) await rmdir(config.state_dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "ENOENT" && e.code !== "EBUSY") throw e;
  });
  return { removedContainers, leftInStateDir: leftInStateDir.sort() };
}

/** The name in the cell's identity file, or null when it never registered. */
async function registeredName(stateDir: string): Promise<string | null> {
  const file = join(stateDir, "cell.json");
  const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return null;
    throw e;
  });
  if (text === null) return null;
  const parsed = z.object({ name: z.string() }).safeParse(parseJsonOrNull(text));
  if (!parsed.success) throw new Error(`${file} is unreadable: it names no cell`);
  return parsed.data.name;
}

function parseJsonOrNull(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null; // reported by the schema check as unreadable
  }
}

/**
 * Mount points below `dir` in this process's mount namespace; `dir` itself
 * may be one (a volume for the state dir), which removing its entries never crosses.
 */
async function mountsUnder(dir: string): Promise<string[]> {
  const root = resolve(dir); // mountinfo's form: a trailing slash would match nothing
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  return mountinfo
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((m): m is string => m !== undefined && m.startsWith(`${root}/`));
}
