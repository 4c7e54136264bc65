/**
 * @module A cell's container driver wired as agent/main.ts wires it (the
 * layout of agent/cell/host-layout.ts, layer cache, rootfs, network, runtime)
 * but without a control plane, for tests that run real instances of the
 * fixture httpd image, in-process or in a stand-in agent process.
 */
import { chmod, mkdir } from "node:fs/promises";
import { pino } from "pino";
import { CellContainerDriver } from "../../agent/cell/container-driver";
import { CacheBudget } from "../../agent/images/cache-budget";
import { DEFAULT_PULL_LIMITS } from "../../agent/images/image-store";
import { cellHostLayout, type CellHostLayout } from "../../agent/cell/host-layout";
import { LayerCache } from "../../agent/images/layer-cache";
import { LogShipper } from "../../agent/logs/shipper";
import { parseNetworkConfig } from "../../agent/network/config";
import { NetworkManager } from "../../agent/network/manager";
import { tableName, vethPrefix } from "../../agent/network/nft-rules";
import { RootfsManager } from "../../agent/rootfs/rootfs-manager";
import { Runtime } from "../../agent/runtime/runtime";
import type { InstanceSpec } from "../../shared/protocol/instance";
import { resolveImage } from "../../shared/registry/resolve";
import { registrySchemes } from "../../shared/registry/session";
import { HTTPD_PORT } from "../fixtures/images";
import type { CellHostScope } from "./cell-host";
import { makeSpec } from "./specs";

export interface TestCellOptions {
  name: string;
  stateDir: string;
  cgroupParent: string;
  cellAddress: string;
  containerCidr: string;
  hostPorts: { min: number; max: number };
  /** The fixture registry (plain HTTP). */
  registryHost: string;
  /** Prepared network namespaces kept ready (the agent's network_pool_size); none when absent. */
  networkPool?: number;
}

export interface TestCell {
  driver: CellContainerDriver;
  rootfs: RootfsManager;
  network: NetworkManager;
  paths: CellHostLayout;
  /** What cellHostState() reads for this cell. */
  scope: CellHostScope;
}

export const TEST_DISK_MB = 64;

/** What cellHostState() reads for the cell `o` describes (before or after it exists). */
export function testCellScope(o: Pick<TestCellOptions, "name" | "stateDir" | "cgroupParent" | "containerCidr">): CellHostScope {
  const paths = cellHostLayout({ name: o.name, state_dir: o.stateDir });
  return { stateDir: o.stateDir, cgroupParent: o.cgroupParent, tableName: tableName(paths), vethPrefix: vethPrefix(paths), containerCidr: o.containerCidr };
}

export async function openTestCell(o: TestCellOptions): Promise<TestCell> {
  await mkdir(o.stateDir, { recursive: true });
  // The containers' mapped root users must traverse it to their rootfs and /etc files.
  await chmod(o.stateDir, 0o711);
  const paths = cellHostLayout({ name: o.name, state_dir: o.stateDir });
  const log = pino({ level: "silent" });
  const cache = await LayerCache.open(paths.layers);
  const rootfs = await RootfsManager.open(paths.rootfs);
  const network = new NetworkManager(parseNetworkConfig({
    cellName: paths.cellName, ifTag: paths.ifTag, containerCidr: o.containerCidr, cellAddress: o.cellAddress,
    hostPorts: o.hostPorts, runDir: paths.netnsRunDir, stateDir: paths.networkState, poolSize: o.networkPool ?? 0,
  }));
  await network.recover();
  await network.prewarm();
  const runtime = await Runtime.open({ stateDir: paths.containers, cgroupParent: o.cgroupParent });
  // The shipper is never started (no control plane): untrack's last flush fails and is only logged.
  const logs = new LogShipper({ apiUrl: "http://127.0.0.1:1", cellGuid: o.name, credential: "none", stateDir: o.stateDir, intervalMs: 1000, ackTimeoutMs: 1000, log });
  const driver = new CellContainerDriver({ cache, rootfs, network, runtime, logs, log, maxSlots: 8, pullLimits: DEFAULT_PULL_LIMITS, cacheBudget: new CacheBudget(cache, 1 << 30) });
  driver.setRegistryAccess({ version: 1, trusted_ca_certificates: [], insecure_registries: [o.registryHost], cell_only_registries: [] });
  return { driver, rootfs, network, paths, scope: testCellScope(o) };
}

export type HttpdImage = Awaited<ReturnType<typeof resolveImage>>;

export function resolveHttpd(registryHost: string): Promise<HttpdImage> {
  return resolveImage(`${registryHost}/httpd:latest`, { fetch, schemes: registrySchemes(registryHost, [registryHost], { canSkipTlsVerify: false }), listedRegistries: [registryHost] });
}

/** An instance of the httpd fixture image serving its page on HTTPD_PORT. */
export function httpdSpec(image: HttpdImage, overrides: Partial<InstanceSpec> = {}): InstanceSpec {
  return makeSpec({
    image: { ref: image.ref, manifest_digest: image.manifest_digest, layers: image.layers },
    command: { kind: "exec", argv: [...image.config.entrypoint, ...image.config.cmd] },
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", PORT: String(HTTPD_PORT) },
    port: HTTPD_PORT,
    memory_mb: 64,
    disk_mb: TEST_DISK_MB,
    health_check: { type: "port", timeout_s: 20, invocation_timeout_s: 1, interval_s: 30, endpoint: null },
    ...overrides,
  });
}
