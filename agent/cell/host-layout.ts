/**
 * @module Where a cell keeps its state and what its host resources are
 * called, from its name and state dir: one place for the daemon that makes
 * them and the teardown that removes them.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";

export interface CellHostLayout {
  /** Names the nft table `berth_<cellName>`. */
  cellName: string;
  /** Host veth ends are `brt<ifTag>-<slot>`: 4 letters, stable per cell name. */
  ifTag: string;
  layers: string;
  rootfs: string;
  /** Namespace files (a shared bind mount of its own). */
  netnsRunDir: string;
  /** Network records: host ports and addresses. */
  networkState: string;
  /** The runtime's per-container state. */
  containers: string;
}

export function cellHostLayout(cell: { name: string; state_dir: string }): CellHostLayout {
  return {
    cellName: cell.name.replaceAll("-", "_"),
    ifTag: "c" + createHash("sha256").update(cell.name).digest("hex").slice(0, 3),
    layers: join(cell.state_dir, "layers"),
    rootfs: join(cell.state_dir, "rootfs"),
    netnsRunDir: join(cell.state_dir, "netns"),
    networkState: join(cell.state_dir, "network"),
    containers: join(cell.state_dir, "containers"),
  };
}
