/**
 * @module One network namespace per container, handed to the runtime by
 * path: a /30 of the cell's container range on a veth pair (eth0 inside, a
 * `brt<tag>-<slot>` end on the host), the app's port published on a host
 * port of the cell address, egress NATed and fenced by the table that
 * nft-rules.ts describes. Every namespace starts with
 * net.ipv4.ip_unprivileged_port_start=0, as Docker's and containerd's do:
 * the namespace is the host user namespace's, so without it an image's root
 * (or any USER) could not listen on 80.
 *
 * Per container, setup is one netlink exchange in the addon (namespace, veth,
 * addresses, routes) and one nft element; teardown the reverse. The whole
 * table is written only at recovery. Records on disk (records.ts) make host
 * ports and addresses survive an agent restart without collisions.
 *
 * With `poolSize` > 0, that many namespaces are kept prepared (spares), so a
 * setup only writes its record and publishes its port; the pool refills in
 * the background after each take. Making a namespace took 3.3 ms p50 and
 * 9-32 ms p95 here, taking a spare 0.6 ms p50 (bench/network-setup.ts). A
 * spare is exactly what setup would make (lo, veth, both addresses, default
 * route), is never used twice, and has no record: its namespace file is
 * `<runDir>/_<hostIfname>` (container ids cannot start with `_`) and its
 * host end `brt<ifTag>-<slot>` like any other. recover() removes the spares
 * of an earlier run with the other orphans, dispose() removes the live ones,
 * and spares() lists them.
 *
 * @example
 * const net = new NetworkManager(parseNetworkConfig({...}));
 * await net.recover();
 * await net.prewarm(); // with poolSize > 0: the spares are ready
 * const { netnsPath, hostPort } = await net.setup("c1", { appPort: 8080 });
 * // the runtime joins netnsPath; the route points at cellAddress:hostPort
 * await net.teardown("c1");
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { native } from "../native/index";
import { pickFree } from "./allocate";
import type { NetworkConfig } from "./config";
import { decommissionNetwork } from "./decommission";
import { hostLinks, ipForwarding, livePortMappings, netnsFiles, setIpForwarding } from "./host";
import { parseCidr, slotAddresses, slotCount, type Cidr } from "./ipv4";
import { hostIfname, publishScript, resolversScript, tableScript, vethPrefix, withdrawScript } from "./nft-rules";
import { CONTAINER_ID, RecordStore, type NetworkRecord } from "./records";
import { planRecovery } from "./recovery";
import { containerNameservers, containerResolvConf } from "./resolv-conf";

export interface ContainerNetwork {
  containerId: string;
  /** Bind-mounted network namespace for the runtime to join (setns). */
  netnsPath: string;
  containerIp: string;
  /** The host end of the veth: the container's default gateway. */
  gatewayIp: string;
  hostIfname: string;
  cellAddress: string;
  hostPort: number;
  appPort: number;
}

/** A prepared namespace: a record's place (slot, veth, addresses) without a container or port. */
export type SpareNetwork = Pick<NetworkRecord, "slot" | "hostIfname" | "netnsPath" | "hostIp" | "containerIp">;

export interface NetworkManagerOptions {
  /** Called when a background refill of the pool fails (the next setup tries again). */
  onPoolError?: (error: unknown) => void;
}

export interface RecoveryReport {
  adopted: ContainerNetwork[];
  /** Records whose namespace or veth had gone: their remains were removed. */
  discarded: string[];
  /** Unparseable record files, removed. */
  unreadableRecords: string[];
  orphanLinks: string[];
  orphanNetns: string[];
  orphanPorts: number[];
}

export class NetworkError extends Error {
  constructor(
    readonly code: "not_recovered" | "invalid_container_id" | "invalid_app_port" | "already_exists" | "ports_exhausted" | "addresses_exhausted" | "setup_failed",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "NetworkError";
  }
}

export class NetworkManager {
  private readonly records: RecordStore;
  private readonly range: Cidr;
  private readonly active = new Map<string, NetworkRecord>();
  /** Setups and teardowns in flight, so a teardown waits for its setup. */
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly usedPorts = new Set<number>();
  private readonly usedSlots = new Set<number>();
  private readonly spareList: SpareNetwork[] = [];
  private refilling: Promise<void> | null = null;
  private lastPort = 0;
  private lastSlot = -1;
  private recovered = false;
  /** Nameservers already in the table's `resolvers` set. */
  private readonly resolvers = new Set<string>();

  constructor(
    readonly config: NetworkConfig,
    private readonly options: NetworkManagerOptions = {},
  ) {
    this.records = new RecordStore(config.stateDir);
    this.range = parseCidr(config.containerCidr);
  }

  /**
   * Brings the host in line with the records: adopts containers whose
   * namespace and veth survived, removes everything else of this agent's
   * (veths, namespace files, stale records), rewrites the nft table with the
   * adopted ports, and turns on forwarding. Call once before setup(); the
   * pool starts filling in the background.
   */
  async recover(): Promise<RecoveryReport> {
    await this.stopRefill();
    await this.records.init();
    await mkdir(this.config.runDir, { recursive: true, mode: 0o755 });
    native.netnsShareDir(this.config.runDir);
    const { records, unreadable } = await this.records.readAll();
    const plan = planRecovery(records, {
      links: new Set(await hostLinks(this.linkPrefix())),
      netns: new Set(await netnsFiles(this.config.runDir)),
      ports: await livePortMappings(this.config),
    }, this.range);
    await Promise.all([
      ...plan.orphanLinks.map((hostIfname) => native.netTeardown({ hostIfname })),
      ...plan.orphanNetns.map((name) => native.netTeardown({ netnsPath: join(this.config.runDir, name) })),
    ]);
    await Promise.all([...plan.discard.map((r) => this.records.remove(r.containerId)), ...unreadable.map((p) => this.records.removeFile(p))]);
    this.active.clear();
    this.spareList.length = 0; // spares have no record: their links and files were orphans just removed
    this.usedPorts.clear();
    this.usedSlots.clear();
    for (const r of plan.adopt) this.reserve(r);
    this.lastPort = Math.max(0, ...plan.adopt.map((r) => r.hostPort));
    this.lastSlot = Math.max(-1, ...plan.adopt.map((r) => r.slot));
    const guard = await this.enableForwarding();
    const resolvers = containerNameservers(await this.hostResolvConf(), this.config.fallbackNameservers);
    await native.nftRun(tableScript(this.config, plan.adopt, guard, resolvers));
    this.resolvers.clear();
    for (const r of resolvers) this.resolvers.add(r);
    this.recovered = true;
    this.topUp();
    return {
      adopted: plan.adopt.map((r) => this.view(r)),
      discarded: plan.discard.map((r) => r.containerId),
      unreadableRecords: unreadable,
      orphanLinks: plan.orphanLinks,
      orphanNetns: plan.orphanNetns,
      orphanPorts: plan.orphanPorts.map((p) => p.hostPort),
    };
  }

  /** A namespace for `containerId` with `appPort` published on a fresh host port of the cell address. */
  async setup(containerId: string, options: { appPort: number }): Promise<ContainerNetwork> {
    if (!this.recovered) throw new NetworkError("not_recovered", "call recover() before setup()");
    if (!CONTAINER_ID.test(containerId)) throw new NetworkError("invalid_container_id", `container id ${JSON.stringify(containerId)} must match ${CONTAINER_ID}`);
    const { appPort } = options;
    if (!Number.isInteger(appPort) || appPort < 1 || appPort > 65535) throw new NetworkError("invalid_app_port", `app port ${appPort} must be an integer in 1..65535`);
    if (this.active.has(containerId) || this.inFlight.has(containerId)) throw new NetworkError("already_exists", `container ${containerId} already has a network`);
    const { record, prepared } = this.allocate(containerId, appPort);
    try {
      return await this.track(containerId, this.create(record, prepared));
    } finally {
      // After the take, so the refill does not compete with it.
      this.topUp();
    }
  }

  /**
   * Fills the pool up to `poolSize`; resolves once it is full (or the
   * container range has no free /30 left).
   */
  prewarm(): Promise<void> {
    if (!this.recovered) return Promise.reject(new NetworkError("not_recovered", "call recover() before prewarm()"));
    this.refilling ??= this.fill().finally(() => (this.refilling = null));
    return this.refilling;
  }

  /** The prepared namespaces no container has taken yet. */
  spares(): SpareNetwork[] {
    return this.spareList.map((s) => ({ ...s }));
  }

  /** Removes everything setup() made for `containerId`; false when it had nothing. */
  async teardown(containerId: string): Promise<boolean> {
    const pending = this.inFlight.get(containerId);
    if (pending) await pending.catch(() => undefined);
    const record = this.active.get(containerId);
    if (!record) return false;
    await this.track(containerId, this.destroy(record));
    return true;
  }

  get(containerId: string): ContainerNetwork | undefined {
    const r = this.active.get(containerId);
    return r && this.view(r);
  }

  list(): ContainerNetwork[] {
    return [...this.active.values()].map((r) => this.view(r));
  }

  /** The resolv.conf to bind-mount into containers, from the host's. */
  async resolvConf(): Promise<string> {
    return containerResolvConf(await this.hostResolvConf(), this.config.fallbackNameservers);
  }

  private hostResolvConf(): Promise<string> {
    return readFile(this.config.hostResolvConf, "utf8").catch(() => "");
  }

  /** Opens DNS to nameservers the host's resolv.conf gained since the table was written. */
  private async allowNewResolvers(): Promise<void> {
    const fresh = containerNameservers(await this.hostResolvConf(), this.config.fallbackNameservers).filter((r) => !this.resolvers.has(r));
    if (fresh.length === 0) return;
    await native.nftRun(resolversScript(this.config, fresh));
    for (const r of fresh) this.resolvers.add(r);
  }

  /**
   * Decommissions the cell's networking: the pool's spares and every
   * container's network (a refill in flight is waited for first), then
   * what decommissionNetwork() removes (the nft table, the run dir's mount,
   * the records, ip_forward if this agent turned it on and no other Berth
   * table is left).
   */
  async dispose(): Promise<void> {
    await this.stopRefill();
    await Promise.all([...this.spareList.splice(0).map((s) => this.discardSpare(s)), ...[...this.active.keys()].map((id) => this.teardown(id))]);
    await decommissionNetwork(this.config);
    this.recovered = false;
  }

  private linkPrefix(): string {
    return vethPrefix(this.config);
  }

  private async track<T>(containerId: string, work: Promise<T>): Promise<T> {
    this.inFlight.set(containerId, work);
    try {
      return await work;
    } finally {
      this.inFlight.delete(containerId);
    }
  }

  private reserve(r: NetworkRecord): void {
    this.active.set(r.containerId, r);
    this.usedPorts.add(r.hostPort);
    this.usedSlots.add(r.slot);
  }

  private release(r: NetworkRecord): void {
    this.active.delete(r.containerId);
    this.usedPorts.delete(r.hostPort);
    this.usedSlots.delete(r.slot);
  }

  /**
   * Synchronous, so concurrent setups never pick the same port or slot. A
   * spare is taken when there is one (`prepared`), else a free slot.
   */
  private allocate(containerId: string, appPort: number): { record: NetworkRecord; prepared: boolean } {
    const { min, max } = this.config.hostPorts;
    const hostPort = pickFree(min, max, this.usedPorts, this.lastPort);
    if (hostPort === undefined) throw new NetworkError("ports_exhausted", `no free host port in ${min}-${max}`);
    const spare = this.spareList.shift();
    const place = spare ?? this.place(containerId);
    if (!place) throw new NetworkError("addresses_exhausted", `no free /30 in ${this.config.containerCidr}`);
    const record: NetworkRecord = { version: 1, containerId, ...place, hostPort, appPort };
    this.lastPort = hostPort;
    this.reserve(record);
    return { record, prepared: spare !== undefined };
  }

  /**
   * Takes a free /30; its namespace file is named after the container, or
   * for a spare (no container yet) after its host end. Undefined when the
   * range is full.
   */
  private place(containerId: string | null): SpareNetwork | undefined {
    const slot = pickFree(0, slotCount(this.range) - 1, this.usedSlots, this.lastSlot);
    if (slot === undefined) return undefined;
    this.lastSlot = slot;
    this.usedSlots.add(slot);
    const { hostIp, containerIp } = slotAddresses(this.range, slot);
    const ifname = hostIfname(this.config, slot);
    return { slot, hostIfname: ifname, netnsPath: join(this.config.runDir, containerId ?? `_${ifname}`), hostIp, containerIp };
  }

  private makeNamespace(p: SpareNetwork): Promise<void> {
    // The addon undoes its own partial work, and never touches a namespace file it did not create.
    return native.netSetup({ netnsPath: p.netnsPath, hostIfname: p.hostIfname, hostAddress: p.hostIp, containerAddress: p.containerIp, prefixLength: 30 });
  }

  private async fill(): Promise<void> {
    while (this.recovered && this.spareList.length < this.config.poolSize) {
      const spare = this.place(null);
      if (!spare) return;
      try {
        await this.makeNamespace(spare);
      } catch (error) {
        this.usedSlots.delete(spare.slot);
        throw new NetworkError("setup_failed", `preparing a spare network namespace failed: ${(error as Error).message}`, { cause: error });
      }
      if (this.recovered) this.spareList.push(spare);
      else await this.discardSpare(spare); // dispose() or recover() began meanwhile
    }
  }

  /** Refills the pool in the background. */
  private topUp(): void {
    if (this.recovered && this.config.poolSize > 0) this.prewarm().catch((error) => this.options.onPoolError?.(error));
  }

  /** No setup or refill from here until recover() ends; spares already made stay listed. */
  private async stopRefill(): Promise<void> {
    this.recovered = false;
    await this.refilling?.catch(() => undefined);
  }

  private async discardSpare(s: SpareNetwork): Promise<void> {
    await native.netTeardown({ netnsPath: s.netnsPath, hostIfname: s.hostIfname });
    this.usedSlots.delete(s.slot);
  }

  private async create(r: NetworkRecord, prepared: boolean): Promise<ContainerNetwork> {
    const fail = (error: unknown) =>
      new NetworkError("setup_failed", `network setup for ${r.containerId} failed: ${(error as Error).message}`, { cause: error });
    try {
      await this.records.put(r);
      if (!prepared) await this.makeNamespace(r);
    } catch (error) {
      if (prepared) await native.netTeardown({ netnsPath: r.netnsPath, hostIfname: r.hostIfname });
      await this.forget(r);
      throw fail(error);
    }
    try {
      await native.nftRun(publishScript(this.config, r));
      await this.allowNewResolvers();
    } catch (error) {
      await this.destroy(r);
      throw fail(error);
    }
    return this.view(r);
  }

  private async destroy(r: NetworkRecord): Promise<void> {
    await native.nftRun(withdrawScript(this.config, r));
    await native.netTeardown({ netnsPath: r.netnsPath, hostIfname: r.hostIfname });
    await this.forget(r);
  }

  private async forget(r: NetworkRecord): Promise<void> {
    await this.records.remove(r.containerId);
    this.release(r);
  }

  /** Turns on ip_forward if needed; true when Berth turned it on (now or before a restart). */
  private async enableForwarding(): Promise<boolean> {
    const before = await this.records.readHost();
    const wasOn = await ipForwarding();
    const enabledByBerth = !wasOn || (before?.forwardingEnabledByBerth ?? false);
    if (!wasOn) await setIpForwarding(true);
    await this.records.putHost({ version: 1, forwardingEnabledByBerth: enabledByBerth });
    return enabledByBerth;
  }

  private view(r: NetworkRecord): ContainerNetwork {
    return {
      containerId: r.containerId,
      netnsPath: r.netnsPath,
      containerIp: r.containerIp,
      gatewayIp: r.hostIp,
      hostIfname: r.hostIfname,
      cellAddress: this.config.cellAddress,
      hostPort: r.hostPort,
      appPort: r.appPort,
    };
  }
}
