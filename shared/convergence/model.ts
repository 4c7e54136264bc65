/**
 * @module What convergence reads and what it decides. Plain data: the scheduler
 * builds these from D1, and tests from tables.
 */
import type { Resources } from "../protocol/resources";

/** A process that should run (its app STARTED with a current droplet). */
export interface DesiredProcess {
  process_guid: string;
  app_guid: string;
  /** The process version new instances get; instances of another version are stopped. */
  version: string;
  instances: number;
  memory_mb: number;
  disk_mb: number;
  /** Every Berth app is a Docker image app; the field keeps the flag rule explicit. */
  lifecycle: "docker";
  /** The droplet's layers, so placement can prefer cells that hold them. */
  layers: { digest: string; size: number }[];
}

export interface DesiredState {
  processes: DesiredProcess[];
  /** The `diego_docker` feature flag: while off, desired Docker instances count as zero. */
  diego_docker: boolean;
}

/** The one instance state enum: convergence, reports and the instances table use it. */
export const ACTUAL_STATES = ["UNCLAIMED", "CLAIMED", "STARTING", "RUNNING", "CRASHED", "STOPPING"] as const;
export type ActualState = (typeof ACTUAL_STATES)[number];

/** Placed and not given up: the states whose containers the cell should keep running. */
export const STARTED_STATES = ["CLAIMED", "STARTING", "RUNNING"] as const satisfies readonly ActualState[];
export const isStarted = (state: ActualState): boolean => (STARTED_STATES as readonly ActualState[]).includes(state);

/**
 * Diego's presence: ORDINARY; EVACUATING (its cell drains, it keeps serving until
 * its replacement runs); SUSPECT (its cell stopped heartbeating, it stays routable
 * until its replacement runs).
 */
export const PRESENCES = ["ORDINARY", "EVACUATING", "SUSPECT"] as const;
export type Presence = (typeof PRESENCES)[number];

export interface ActualInstance {
  instance_guid: string;
  process_guid: string;
  index: number;
  process_version: string;
  cell_guid: string | null;
  state: ActualState;
  presence: Presence;
  /** When it entered `state`, ms since the epoch. */
  since: number;
  crash_count: number;
}

export const CELL_STATES = ["ACTIVE", "DRAINING", "LOST"] as const;
export type CellState = (typeof CELL_STATES)[number];

export interface CellView {
  guid: string;
  zone: string;
  state: CellState;
  /** ms since the epoch; null before the first heartbeat (then `registered_at` counts). */
  last_heartbeat_at: number | null;
  registered_at: number;
  capacity: Resources;
  cached_layers: string[];
}

/** A new instance for an index that has none, or another try for an unplaced one. */
export interface PlaceAction {
  process_guid: string;
  index: number;
  crash_count: number;
  /** The UNCLAIMED instance to place; null for a new instance. */
  instance_guid: string | null;
  reason: string;
}

/**
 * A new instance in place of `instance_guid`. `keep` says what happens to the old
 * one meanwhile: it stays SUSPECT or EVACUATING (still routable) until the
 * replacement runs, or it goes at once (null).
 */
export interface ReplaceAction {
  instance_guid: string;
  process_guid: string;
  index: number;
  crash_count: number;
  keep: "SUSPECT" | "EVACUATING" | null;
  /** The replacement goes elsewhere if any other cell fits (the old cell never took it). */
  avoid_cell?: string;
  reason: string;
}

export type StopCause =
  | "process_not_desired"
  | "diego_docker_disabled"
  | "version_changed"
  | "extra_index"
  | "duplicate"
  | "replacement_settled"
  | "cell_lost"
  | "suspect_returned";

export interface StopAction {
  instance_guid: string;
  cause: StopCause;
  reason: string;
}

export interface MarkLostAction {
  cell_guid: string;
  reason: string;
}

/** A SUSPECT instance whose cell came back before its replacement ran: ORDINARY again. */
export interface PromoteAction {
  instance_guid: string;
  reason: string;
}

export interface Plan {
  place: PlaceAction[];
  replace: ReplaceAction[];
  stop: StopAction[];
  markLost: MarkLostAction[];
  promote: PromoteAction[];
}
