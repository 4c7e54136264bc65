/**
 * Container network setup + teardown, Berth's NetworkManager (netlink and
 * libnftables in the addon) against the peer way of doing the same steps by
 * spawning the tools (`unshare --net=FILE`, `ip`, `nsenter ip -batch`, `nft`),
 * as kawasaki does with ip/iptables. 20 containers each, one after another,
 * then 20 set up at once; Berth also with a pool of 2 prepared namespaces.
 * Run as root: `npx tsx bench/network-setup.ts [count]`.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseNetworkConfig } from "../agent/network/config";
import { slotAddresses, parseCidr } from "../agent/network/ipv4";
import { NetworkManager } from "../agent/network/manager";
import { freeContainerCidr, makeCellAddress, sh, uniqueTag } from "../test/support/netns";

const run = promisify(execFile);
const count = Number(process.argv[2] ?? 20);

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

interface Figures {
  setup: number[];
  teardown: number[];
  concurrent20: number;
}

/**
 * With `poolSize` > 0 each one-after-another setup first waits for the pool
 * to be full again (as between starts on a cell); 20 at once drain it.
 */
async function benchBerth(cellAddress: string, dir: string, poolSize: number): Promise<Figures> {
  const tag = uniqueTag(4);
  const config = parseNetworkConfig({
    cellName: `bench_${tag}`,
    ifTag: tag,
    containerCidr: await freeContainerCidr(),
    cellAddress,
    hostPorts: { min: 61001, max: 65000 },
    runDir: join(dir, `run${poolSize}`),
    stateDir: join(dir, `state${poolSize}`),
    poolSize,
  });
  const manager = new NetworkManager(config);
  await manager.recover();
  const setup: number[] = [];
  const teardown: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      await manager.prewarm();
      setup.push(await time(() => manager.setup(`c${i}`, { appPort: 8080 })));
    }
    for (let i = 0; i < count; i++) teardown.push(await time(() => manager.teardown(`c${i}`)));
    const ids = Array.from({ length: 20 }, (_, i) => `p${i}`);
    await manager.prewarm();
    const concurrent20 = await time(() => Promise.all(ids.map((id) => manager.setup(id, { appPort: 8080 }))));
    await Promise.all(ids.map((id) => manager.teardown(id)));
    return { setup, teardown, concurrent20 };
  } finally {
    await manager.dispose();
    await sh(["umount", config.runDir]).catch(() => undefined);
  }
}

/** The same steps with one spawned tool per step (batched where the tools allow). */
async function benchSpawned(cellAddress: string, dir: string): Promise<Figures> {
  const tag = uniqueTag(4);
  const table = `benchpeer_${tag}`;
  const range = parseCidr(await freeContainerCidr());
  await sh(["nft", "-f", "-"], `table inet ${table} {\n map ports { type inet_service : ipv4_addr . inet_service; }\n chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n  ip daddr ${cellAddress} dnat ip to tcp dport map @ports\n }\n}\n`);
  const up = async (i: number) => {
    const netns = join(dir, `peer${i}`);
    const ifname = `bpr${tag}-${i}`;
    const { hostIp, containerIp } = slotAddresses(range, i);
    await writeFile(netns, "");
    await run("unshare", [`--net=${netns}`, "true"]);
    await run("ip", ["link", "add", ifname, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    await sh(["ip", "-batch", "-"], `addr add ${hostIp}/30 dev ${ifname}\nlink set ${ifname} up\n`);
    await sh(["nsenter", `--net=${netns}`, "ip", "-batch", "-"], `link set lo up\naddr add ${containerIp}/30 dev eth0\nlink set eth0 up\nroute add default via ${hostIp}\n`);
    await run("nft", ["add", "element", "inet", table, "ports", `{ ${61001 + i} : ${containerIp} . 8080 }`]);
  };
  const down = async (i: number) => {
    await run("nft", ["delete", "element", "inet", table, "ports", `{ ${61001 + i} }`]);
    await run("ip", ["link", "del", `bpr${tag}-${i}`]);
    await run("umount", [join(dir, `peer${i}`)]);
    await rm(join(dir, `peer${i}`));
  };
  const setup: number[] = [];
  const teardown: number[] = [];
  try {
    for (let i = 0; i < count; i++) setup.push(await time(() => up(i)));
    for (let i = 0; i < count; i++) teardown.push(await time(() => down(i)));
    const ids = Array.from({ length: 20 }, (_, i) => count + i);
    const concurrent20 = await time(() => Promise.all(ids.map(up)));
    await Promise.all(ids.map(down));
    return { setup, teardown, concurrent20 };
  } finally {
    await run("nft", ["delete", "table", "inet", table]);
  }
}

function row(name: string, f: Figures): string[] {
  const fmt = (n: number) => n.toFixed(1).padStart(7);
  return [name.padEnd(22), fmt(percentile(f.setup, 50)), fmt(percentile(f.setup, 95)), fmt(percentile(f.teardown, 50)), fmt(percentile(f.teardown, 95)), fmt(f.concurrent20)];
}

const cell = await makeCellAddress();
const dir = await mkdtemp(join(tmpdir(), "berth-bench-net-"));
try {
  const berth = await benchBerth(cell.address, dir, 0);
  const pooled = await benchBerth(cell.address, dir, 2);
  const peer = await benchSpawned(cell.address, dir);
  console.log(`network setup/teardown, ${count} containers one after another, then 20 at once (ms)`);
  console.log(["".padEnd(22), "setup50", "setup95", "tear50", "tear95", " 20-at-once"].join(" "));
  console.log(row("berth (netlink+libnft)", berth).join(" "));
  console.log(row("berth, pool of 2", pooled).join(" "));
  console.log(row("peer (ip/nft spawned)", peer).join(" "));
  const ratio = (a: number, b: number) => `${(a / b).toFixed(1)}x`;
  console.log(
    `peer/berth: setup p50 ${ratio(percentile(peer.setup, 50), percentile(berth.setup, 50))}, ` +
      `teardown p50 ${ratio(percentile(peer.teardown, 50), percentile(berth.teardown, 50))}, ` +
      `20 at once ${ratio(peer.concurrent20, berth.concurrent20)}`,
  );
} finally {
  await cell.remove();
  await rm(dir, { recursive: true, force: true });
}
