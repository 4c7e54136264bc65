/**
 * @module What the supervisor needs from the cell to run one instance (Nomad's
 * DriverPlugin: Start/Wait/Stop/Recover). The cell's real driver composes the
 * image store, root filesystem, network and native runtime.
 */
import type { Exit, InstanceSpec, Usage } from "../../shared/protocol/instance";

export interface PullProgress {
  layersDone: number;
  layersTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface RunningContainer {
  /** Where the cell reaches the app for health checks (container address, app port). */
  readonly probeHost: string;
  readonly probePort: number;
  /** The app's port published on the cell's address. */
  readonly hostPort: number | null;
  readonly pid: number;
  /** Settles once when the app's process tree has exited. */
  readonly exited: Promise<Exit>;
  /** Signals the app (the container's init forwards it). */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** Removes processes, mounts, cgroups and network; idempotent. */
  destroy(): Promise<void>;
  usage(): Promise<Usage | null>;
}

export interface ContainerDriver {
  start(spec: InstanceSpec, opts: { signal: AbortSignal; onProgress?: (p: PullProgress) => void }): Promise<RunningContainer>;
  /** Re-adopts a container a previous agent process started; null when it is gone. */
  recover(spec: InstanceSpec): Promise<RunningContainer | null>;
}
