/**
 * @module `place(requests, cells)`: Diego's auction as a pure function
 * (auction auctionrunner/scheduler.go, zone_sorter.go; rep resources.go).
 *
 * - Work is ordered by index ascending, then memory descending.
 * - A cell fits when its free memory and disk cover the request and it has a
 *   free container slot.
 * - Zones are tried least-loaded first (fewest instances of this process), so
 *   a process spreads across zones before it doubles up in one.
 * - Within a zone group the lowest score wins:
 *   mean(fraction of memory, disk and slots used after placing)
 *   + 0.25 × containers starting on the cell
 *   + 1000 × instances of the same process on the cell
 *   − 0.5 × fraction of the image's bytes the cell already caches (Berth's
 *     addition: prefer cells holding the layers, never above spreading).
 * - A request may name a cell to avoid (one that never took it before): that
 *   cell wins only when no other fits.
 * - An image whose layers alone pass the disk quota fits nowhere (the image
 *   counts against the quota, as Garden counts it): placement_error
 *   "insufficient resources: disk: <both sizes>".
 * - No fit anywhere: placement_error "insufficient resources: <what>" (CF's
 *   wording, the lacking resources sorted and joined), or "found no compatible
 *   cell" when no cell can take work at all.
 */
import type { Resources } from "../protocol/resources";
import { compressedImageBytes, imageOverQuota } from "../staging/image-size";

export interface PlacementRequest {
  /** The caller's handle for this request (returned with the result). */
  key: string;
  process_guid: string;
  index: number;
  memory_mb: number;
  disk_mb: number;
  layers: { digest: string; size: number }[];
  /** A cell to use only when no other fits. */
  avoid?: string;
}

export interface PlacementCell {
  guid: string;
  zone: string;
  capacity: Resources;
  /** What instances already placed on the cell hold. */
  allocated: Resources;
  /** Instances placed but not yet RUNNING (Diego's starting containers). */
  starting: number;
  /** Instances per process guid already on the cell. */
  processes: Record<string, number>;
  cached_layers: string[];
}

export interface Placement {
  placed: { key: string; cell_guid: string }[];
  failed: { key: string; placement_error: string }[];
}

export const STARTING_CONTAINER_WEIGHT = 0.25;
export const SAME_PROCESS_WEIGHT = 1000;
export const LAYER_LOCALITY_WEIGHT = 0.5;

interface CellState {
  cell: PlacementCell;
  free: Resources;
  starting: number;
  processes: Map<string, number>;
  cached: Set<string>;
}

type Lack = "memory" | "disk" | "containers";

function lacks(state: CellState, req: PlacementRequest): Lack[] {
  const missing: Lack[] = [];
  if (state.free.memory_mb < req.memory_mb) missing.push("memory");
  if (state.free.disk_mb < req.disk_mb) missing.push("disk");
  if (state.free.containers < 1) missing.push("containers");
  return missing;
}

const fractionUsed = (free: number, total: number) => (total <= 0 ? 1 : 1 - free / total);

function score(state: CellState, req: PlacementRequest): number {
  const { capacity } = state.cell;
  const resources =
    (fractionUsed(state.free.memory_mb - req.memory_mb, capacity.memory_mb) +
      fractionUsed(state.free.disk_mb - req.disk_mb, capacity.disk_mb) +
      fractionUsed(state.free.containers - 1, capacity.containers)) /
    3;
  const totalBytes = req.layers.reduce((n, l) => n + l.size, 0);
  const cachedBytes = req.layers.reduce((n, l) => n + (state.cached.has(l.digest) ? l.size : 0), 0);
  const locality = totalBytes === 0 ? 0 : cachedBytes / totalBytes;
  return (
    resources +
    STARTING_CONTAINER_WEIGHT * state.starting +
    SAME_PROCESS_WEIGHT * (state.processes.get(req.process_guid) ?? 0) -
    LAYER_LOCALITY_WEIGHT * locality
  );
}

/** Zones grouped by how many instances of the process they hold, fewest first. */
function zoneGroups(states: CellState[], processGuid: string): CellState[][] {
  const perZone = new Map<string, { count: number; cells: CellState[] }>();
  for (const s of states) {
    const z = perZone.get(s.cell.zone) ?? { count: 0, cells: [] };
    z.count += s.processes.get(processGuid) ?? 0;
    z.cells.push(s);
    perZone.set(s.cell.zone, z);
  }
  const byCount = new Map<number, CellState[]>();
  for (const z of perZone.values()) byCount.set(z.count, [...(byCount.get(z.count) ?? []), ...z.cells]);
  return [...byCount.entries()].sort(([a], [b]) => a - b).map(([, cells]) => cells);
}

function commit(state: CellState, req: PlacementRequest): void {
  state.free = {
    memory_mb: state.free.memory_mb - req.memory_mb,
    disk_mb: state.free.disk_mb - req.disk_mb,
    containers: state.free.containers - 1,
  };
  state.starting += 1;
  state.processes.set(req.process_guid, (state.processes.get(req.process_guid) ?? 0) + 1);
}

/** The best cell for `req` among `states`: least-loaded zone group first, lowest score within it; what lacked goes to `problems`. */
function pick(req: PlacementRequest, states: CellState[], problems: Set<Lack>): CellState | undefined {
  for (const group of zoneGroups(states, req.process_guid)) {
    let best: { state: CellState; score: number } | undefined;
    for (const s of group) {
      const missing = lacks(s, req);
      missing.forEach((m) => problems.add(m));
      if (missing.length > 0) continue;
      const sc = score(s, req);
      if (!best || sc < best.score || (sc === best.score && s.cell.guid < best.state.cell.guid)) best = { state: s, score: sc };
    }
    if (best) return best.state;
  }
  return undefined;
}

export function place(requests: PlacementRequest[], cells: PlacementCell[]): Placement {
  const states: CellState[] = cells.map((cell) => ({
    cell,
    free: {
      memory_mb: cell.capacity.memory_mb - cell.allocated.memory_mb,
      disk_mb: cell.capacity.disk_mb - cell.allocated.disk_mb,
      containers: cell.capacity.containers - cell.allocated.containers,
    },
    starting: cell.starting,
    processes: new Map(Object.entries(cell.processes)),
    cached: new Set(cell.cached_layers),
  }));
  const ordered = [...requests].sort((a, b) => a.index - b.index || b.memory_mb - a.memory_mb);
  const result: Placement = { placed: [], failed: [] };
  for (const req of ordered) {
    const tooBig = imageOverQuota(compressedImageBytes(req.layers), req.disk_mb);
    if (tooBig) {
      result.failed.push({ key: req.key, placement_error: `insufficient resources: disk: ${tooBig}` });
      continue;
    }
    const problems = new Set<Lack>();
    const others = req.avoid === undefined ? states : states.filter((s) => s.cell.guid !== req.avoid);
    const winner = pick(req, others, problems) ?? (others === states ? undefined : pick(req, states, problems));
    if (winner) {
      commit(winner, req);
      result.placed.push({ key: req.key, cell_guid: winner.cell.guid });
    } else {
      const error = states.length === 0 ? "found no compatible cell" : `insufficient resources: ${[...problems].sort().join(", ")}`;
      result.failed.push({ key: req.key, placement_error: error });
    }
  }
  return result;
}
