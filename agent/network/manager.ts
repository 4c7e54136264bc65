/**
 * @module One network namespace per container, handed to the runtime by
 * path: a /30 of the cell's container range on a veth pair (eth0 inside, a
 * `brt<tag>-<slot>` end on the host), the app's port published on a host
 * port of the cell address, egress NATed and fenced by the table that
 * nft-rules.ts describes.
 *
 * Per container, setup is one netlink exchange in the addon (namespace, veth,
 * addresses, routes) and one nft element; teardown the reverse. The whole
 * table is written only at recovery. Records on disk (records.ts) make host
 * ports and addresses survive an agent restart without collisions.
 *
 * @example
 * const net = new NetworkManager(parseNetworkConfig({...}));
 * await net.recover();
 * const { netnsPath, hostPort } = await net.setup("c1", { appPort: 8080 });
 * // the runtime joins netnsPath; the route points at cellAddress:hostPort
 * await net.teardown("c1");
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { native } from "../native/index";
import { pickFree } from "./allocate";
import type { NetworkConfig } from "./config";
import { berthTables, hostLinks, ipForwarding, livePortMappings, netnsFiles, setIpForwarding } from "./host";
import { parseCidr, slotAddresses, slotCount, type Cidr } from "./ipv4";
import { deleteTableScript, publishScript, tableScript, VETH_PREFIX, withdrawScript } from "./nft-rules";
import { CONTAINER_ID, RecordStore, type NetworkRecord } from "./records";
import { planRecovery } from "./recovery";
import { containerResolvConf } from "./resolv-conf";

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
  private lastPort = 0;
  private lastSlot = -1;
  private recovered = false;

  constructor(readonly config: NetworkConfig) {
    this.records = new RecordStore(config.stateDir);
    this.range = parseCidr(config.containerCidr);
  }

  /**
   * Brings the host in line with the records: adopts containers whose
   * namespace and veth survived, removes everything else of this agent's
   * (veths, namespace files, stale records), rewrites the nft table with the
   * adopted ports, and turns on forwarding. Call once before setup().
   */
  async recover(): Promise<RecoveryReport> {
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
    this.usedPorts.clear();
    this.usedSlots.clear();
    for (const r of plan.adopt) this.reserve(r);
    this.lastPort = Math.max(0, ...plan.adopt.map((r) => r.hostPort));
    this.lastSlot = Math.max(-1, ...plan.adopt.map((r) => r.slot));
    const guard = await this.enableForwarding();
    await native.nftRun(tableScript(this.config, plan.adopt, guard));
    this.recovered = true;
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
    const record = this.allocate(containerId, appPort);
    return this.track(containerId, this.create(record));
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
    const host = await readFile(this.config.hostResolvConf, "utf8").catch(() => "");
    return containerResolvConf(host, this.config.fallbackNameservers);
  }

  /**
   * Decommissions the cell's networking: every container's network, the nft
   * table and the records; ip_forward goes back off if this agent turned it
   * on and no other Berth table is left.
   */
  async dispose(): Promise<void> {
    await Promise.all([...this.active.keys()].map((id) => this.teardown(id)));
    await native.nftRun(deleteTableScript(this.config));
    const host = await this.records.readHost();
    if (host?.forwardingEnabledByBerth && (await berthTables()).length === 0) await setIpForwarding(false);
    await this.records.removeHost();
    this.recovered = false;
  }

  private linkPrefix(): string {
    return `${VETH_PREFIX}${this.config.ifTag}-`;
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

  /** Synchronous, so concurrent setups never pick the same port or slot. */
  private allocate(containerId: string, appPort: number): NetworkRecord {
    const { min, max } = this.config.hostPorts;
    const hostPort = pickFree(min, max, this.usedPorts, this.lastPort);
    if (hostPort === undefined) throw new NetworkError("ports_exhausted", `no free host port in ${min}-${max}`);
    const slot = pickFree(0, slotCount(this.range) - 1, this.usedSlots, this.lastSlot);
    if (slot === undefined) throw new NetworkError("addresses_exhausted", `no free /30 in ${this.config.containerCidr}`);
    const { hostIp, containerIp } = slotAddresses(this.range, slot);
    const record: NetworkRecord = {
      version: 1,
      containerId,
      slot,
      hostIfname: `${this.linkPrefix()}${slot.toString(36)}`,
      netnsPath: join(this.config.runDir, containerId),
      hostIp,
      containerIp,
      hostPort,
      appPort,
    };
    this.lastPort = hostPort;
    this.lastSlot = slot;
    this.reserve(record);
    return record;
  }

  private async create(r: NetworkRecord): Promise<ContainerNetwork> {
    const fail = (error: unknown) =>
      new NetworkError("setup_failed", `network setup for ${r.containerId} failed: ${(error as Error).message}`, { cause: error });
    try {
      await this.records.put(r);
      // The addon undoes its own partial work, and never touches a namespace file it did not create.
      await native.netSetup({ netnsPath: r.netnsPath, hostIfname: r.hostIfname, hostAddress: r.hostIp, containerAddress: r.containerIp, prefixLength: 30 });
    } catch (error) {
      await this.forget(r);
      throw fail(error);
    }
    try {
      await native.nftRun(publishScript(this.config, r));
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
