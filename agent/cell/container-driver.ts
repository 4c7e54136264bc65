/**
 * @module The cell's real ContainerDriver: image store → root filesystem and
 * network namespace (at once) → native runtime, undone in reverse on failure
 * and on destroy. Re-adoption finds each part again by the instance's guid, which is
 * also the container's id everywhere.
 */
import type { CellMetrics } from "./metrics";
import { dirname } from "node:path";
import type { Logger } from "pino";
import type { InstanceSpec, Usage } from "../../shared/protocol/instance";
import type { RegistryAccess } from "../../shared/protocol/registry-access";
import { registrySchemes } from "../../shared/registry/session";
import { listedRegistries } from "../../shared/registry/targets";
import { cellInstanceEnv } from "../../shared/staging/env";
import type { CacheBudget } from "../images/cache-budget";
import { ImageStore, type PullLimits } from "../images/image-store";
import type { LayerCache } from "../images/layer-cache";
import { createRegistryFetch, type RegistryFetch } from "../images/registry-fetch";
import type { LogShipper } from "../logs/shipper";
import type { NetworkManager, ContainerNetwork } from "../network/manager";
import type { RootfsManager } from "../rootfs/rootfs-manager";
import { freeSlot, idRangeForSlot } from "../runtime/ids";
import type { Container, Runtime } from "../runtime/runtime";
import { cpuFraction, type UsageSample } from "../runtime/usage";
import type { ContainerDriver, PullProgress, RunningContainer } from "../supervisor/driver";

export interface DriverDeps {
  cache: LayerCache;
  rootfs: RootfsManager;
  network: NetworkManager;
  runtime: Runtime;
  logs: LogShipper;
  log: Logger;
  maxSlots: number;
  /** Limits for hostile or huge images. */
  pullLimits: PullLimits;
  cacheBudget: CacheBudget;
  /** Counts pulls and their bytes (--metrics-port); none when absent. */
  metrics?: CellMetrics;
}

/** Registry access as the desired set hands it over; the image store is rebuilt when it changes. */
interface Puller {
  version: number;
  store: ImageStore;
  fetch: RegistryFetch;
}

export class CellContainerDriver implements ContainerDriver {
  private puller: Puller | null = null;
  private readonly slots = new Map<string, number>();

  constructor(private readonly deps: DriverDeps) {}

  /** Called with every desired set: new CA certificates or insecure entries take effect for the next pull. */
  setRegistryAccess(access: RegistryAccess): void {
    if (this.puller?.version === access.version) return;
    const old = this.puller;
    const fetch = createRegistryFetch({ trustedCaCertificates: access.trusted_ca_certificates, insecureRegistries: access.insecure_registries, cellOnlyRegistries: access.cell_only_registries });
    const store = new ImageStore({
      cache: this.deps.cache,
      fetch: fetch.fetch,
      schemesFor: (host) => registrySchemes(host, access.insecure_registries, { canSkipTlsVerify: true }),
      listedRegistries: listedRegistries(access),
      ...this.deps.pullLimits,
      budget: this.deps.cacheBudget,
    });
    this.puller = { version: access.version, store, fetch };
    // Pulls in flight keep the old pool until they finish; it is closed lazily.
    if (old) setTimeout(() => void old.fetch.close(), 60_000).unref();
  }

  async start(spec: InstanceSpec, opts: { signal: AbortSignal; onProgress?: (p: PullProgress) => void }): Promise<RunningContainer> {
    if (!this.puller) throw new Error("registry access not known yet");
    const id = spec.instance_guid;
    const slot = freeSlot(this.slots.values(), this.deps.maxSlots);
    if (slot === null) throw new Error(`no container slot free (max ${this.deps.maxSlots})`);
    this.slots.set(id, slot);
    const ids = idRangeForSlot(slot);
    const undo: (() => Promise<unknown>)[] = [async () => this.slots.delete(id)];
    const rollback = async () => {
      for (const u of undo.reverse()) await u().catch((e) => this.deps.log.warn({ instance: id, err: (e as Error).message }, "cleanup after a failed start"));
    };
    try {
      const store = this.puller.store;
      let bytesPulled = 0;
      const layers = await store.pull(spec.image, {
        holder: id,
        diskQuotaMb: spec.disk_mb,
        signal: opts.signal,
        idShift: this.deps.rootfs.layerIdShift(ids),
        onProgress: (p) => {
          bytesPulled = p.bytesDone;
          opts.onProgress?.(p);
        },
      });
      this.deps.metrics?.pulled(bytesPulled);
      undo.push(() => store.release(id));
      opts.signal.throwIfAborted();
      // Independent of each other: the network (a record and a published port, or a whole
      // namespace when the pool is empty) is made while the rootfs is mounted.
      const [made, networked] = await Promise.allSettled([
        this.deps.rootfs.create(id, layers.map((l) => l.path), { ids, diskMb: spec.disk_mb }),
        this.deps.network.setup(id, { appPort: spec.port }),
      ]);
      if (made.status === "fulfilled") undo.push(() => made.value.destroy());
      if (networked.status === "fulfilled") undo.push(() => this.deps.network.teardown(id));
      if (made.status === "rejected") throw made.reason;
      if (networked.status === "rejected") throw networked.reason;
      const rootfs = made.value;
      const net = networked.value;
      opts.signal.throwIfAborted();
      const container = await this.deps.runtime.create({
        id,
        rootfs: rootfs.path,
        slot,
        command: spec.command,
        user: spec.user,
        env: { ...spec.env, ...cellInstanceEnv({ cellAddress: net.cellAddress, hostPort: net.hostPort, containerIp: net.containerIp, appPort: spec.port }) },
        workdir: spec.workdir,
        memoryMb: spec.memory_mb,
        netnsPath: net.netnsPath,
        address: net.containerIp,
      });
      return this.running(spec, container, net);
    } catch (e) {
      await rollback();
      throw e;
    }
  }

  async recover(spec: InstanceSpec): Promise<RunningContainer | null> {
    const id = spec.instance_guid;
    const container = await this.deps.runtime.adopt(id);
    const net = this.deps.network.get(id);
    if (!container || !net) {
      await this.cleanup(id, container);
      return null;
    }
    this.slots.set(id, container.state.slot);
    return this.running(spec, container, net);
  }

  /**
   * At start, before re-adoption and any start: stops the containers the
   * runtime has no record of (an agent killed while creating them; see
   * Runtime.stopOrphans) and removes their network, root filesystem and layer
   * holds, found by the same id.
   */
  async stopOrphans(): Promise<Array<{ id: string; pids: number[] }>> {
    const orphans = await this.deps.runtime.stopOrphans();
    for (const { id } of orphans) await this.cleanup(id, null);
    return orphans;
  }

  private running(spec: InstanceSpec, container: Container, net: ContainerNetwork): RunningContainer {
    const id = spec.instance_guid;
    this.deps.logs.track({ instanceGuid: id, appGuid: spec.app_guid, index: spec.index, logDir: dirname(this.deps.runtime.logPath(id, "stdout")) });
    let last: UsageSample | null = null;
    return {
      probeHost: net.containerIp,
      probePort: spec.port,
      hostPort: net.hostPort,
      pid: container.pid,
      exited: container.exited,
      signal: async (signal) => {
        container.signal(signal);
      },
      destroy: () => this.cleanup(id, container),
      usage: async (): Promise<Usage> => {
        const [u, disk] = await Promise.all([container.usage(), this.deps.rootfs.diskUsage(id)]);
        const sample = { at: Date.now(), cpuUsec: u.cpuUsec ?? 0 };
        const cpu = last ? cpuFraction(last, sample) : 0;
        last = sample;
        return { cpu, mem: u.memoryBytes ?? 0, disk: disk ?? 0 };
      },
    };
  }

  /** Removes every part of a container, whichever exist (idempotent). */
  private async cleanup(id: string, container: Container | null): Promise<void> {
    await this.deps.logs.untrack(id);
    await container?.destroy();
    await this.deps.network.teardown(id);
    await this.deps.rootfs.destroy(id);
    // The cache, not the store: after a restart no store exists until the first desired set.
    await this.deps.cache.release(id);
    this.slots.delete(id);
  }
}

