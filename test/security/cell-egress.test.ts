/**
 * Egress from inside real containers (the runtime, as root, in the network
 * manager's namespaces), like Cloud Foundry's default security groups:
 * public addresses open; private networks (RFC 1918, CGNAT), link-local
 * metadata, other containers and the cell's own addresses closed unless the
 * admin's policy opens a private range; DNS to the configured resolver only;
 * no forged source addresses. Nothing leaves the machine: "public" is a test
 * host in 198.18.0.0/15 (benchmarking, not private) and the private
 * addresses live in a namespace the test makes, routed only for this test's
 * container range. Without this policy (only the container range, 169.254/16
 * and the host's input closed) the private-network, DNS and forged-source
 * tests fail; the others held before too and keep it so.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { createServer, type Server } from "node:http";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NetworkConfig } from "../../agent/network/config";
import { NetworkManager, type ContainerNetwork } from "../../agent/network/manager";
import { makeCellAddress, makeTestHost, sh, startHttpd, testNetworkConfig, type CellAddress, type Httpd, type TestHost } from "../support/netns";
import { openRuntimeCell, type RuntimeCell } from "./support/runtime-cell";

const octet = () => randomInt(1, 255);
/** Addresses of the test's "LAN" host: private ones, one in a range the admin allows, one the admin denies within it, the resolver. */
const lanNet = `172.${randomInt(16, 32)}.${octet()}`;
const LAN = {
  rfc1918: `10.${randomInt(100, 200)}.${octet()}.${octet()}`,
  cgnat: `100.${randomInt(64, 128)}.${octet()}.${octet()}`,
  allowed: `${lanNet}.10`,
  allowedButDenied: `${lanNet}.200`,
  resolver: `192.168.${octet()}.53`,
  metadata: "169.254.169.254",
};
const WEB_PORT = 8000;

let dir: string;
let cell: CellAddress;
let publicHost: TestHost;
let lan: TestHost;
let config: NetworkConfig;
let manager: NetworkManager;
let runtimeCell: RuntimeCell;
let other: ContainerNetwork;
let probeBinary: string;
const httpds: Httpd[] = [];
const routeTable = String(30000 + randomInt(10000));

/** Sets $own and $gw inside the container: its address and its gateway, the host end of its veth. */
const PREAMBLE = [
  "own=$(ip -4 addr show eth0 | sed -n 's/.*inet \\([0-9.]*\\).*/\\1/p')",
  "gw=$(ip route | sed -n 's/^default via \\([0-9.]*\\).*/\\1/p')",
  'echo "own=$own gw=$gw"',
];

/**
 * Runs `probes` (name → URL, which may name $own and $gw) with wget from
 * inside a real container in a fresh network of the manager, then
 * `extraScript`; what each probe did and what the container printed.
 */
async function fromContainer(probes: Record<string, string>, extraScript = "", withProbeBinary = false): Promise<{ results: Record<string, string>; out: string }> {
  const { rootfs, spec } = await runtimeCell.prepare("");
  if (withProbeBinary) {
    await writeFile(join(rootfs, "bin", "udp-probe"), await readFile(probeBinary));
    await chmod(join(rootfs, "bin", "udp-probe"), 0o755);
  }
  const net = await manager.setup(spec.id, { appPort: 8080 });
  try {
    const lines = Object.entries(probes).map(
      ([name, url]) => `(if timeout 3 wget -q -O /dev/null "${url}" 2>/dev/null; then echo '${name}=reached'; else echo '${name}=blocked'; fi) &`,
    );
    const script = [...PREAMBLE, ...lines, "wait", extraScript].join("\n");
    const c = await runtimeCell.run({ ...spec, netnsPath: net.netnsPath, command: { kind: "shell", script } });
    const out = await readFile(runtimeCell.runtime.logPath(c.id, "stdout"), "utf8");
    await c.destroy();
    const results = Object.fromEntries(out.split("\n").flatMap((l) => (/^[a-z0-9-]+=(reached|blocked)$/.test(l) ? [l.split("=") as [string, string]] : [])));
    return { results, out };
  } finally {
    await manager.teardown(spec.id);
  }
}

/** udp-probe's listener on addr:port in a namespace: the datagrams' "FROM MESSAGE" lines so far. */
async function udpListener(netnsPath: string, addr: string, port: number): Promise<{ received(): string[]; stop(): Promise<void> }> {
  const child = spawn("nsenter", [`--net=${netnsPath}`, probeBinary, "recv", addr, String(port), "60"]);
  let text = "";
  child.stdout.on("data", (c: Buffer) => (text += c));
  const ended = new Promise((resolve) => child.on("close", resolve));
  for (let i = 0; i < 100 && !text.includes("listening\n"); i++) await new Promise((r) => setTimeout(r, 20));
  return {
    received: () => text.split("\n").filter((l) => l && l !== "listening"),
    async stop() {
      child.kill();
      await ended;
    },
  };
}

/** Waits until `done()` holds (at most ~5 s): what a test then checks never depends on the wait. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
}

function listen(host: string): Promise<Server> {
  const server = createServer((_req, res) => res.end("host service"));
  return new Promise((resolve) => server.listen(0, host, () => resolve(server)));
}
const portOf = (s: Server) => (s.address() as { port: number }).port;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-egress-"));
  probeBinary = join(dir, "udp-probe");
  execFileSync("cc", ["-static", "-O2", "-o", probeBinary, join(import.meta.dirname, "support/udp-probe.c")]);
  cell = await makeCellAddress();
  publicHost = await makeTestHost();
  lan = await makeTestHost();
  const hostResolvConf = join(dir, "resolv.conf");
  await writeFile(hostResolvConf, `nameserver 127.0.0.53\nnameserver ${LAN.resolver}\n`);
  config = await testNetworkConfig("eg", dir, cell.address, {
    allowNetworks: [`${lanNet}.0/24`],
    denyNetworks: [`${lanNet}.128/25`],
    hostResolvConf,
  });
  // The LAN's addresses are routed to its namespace for this test's containers only.
  await sh(["nsenter", `--net=${lan.netnsPath}`, "ip", "-batch", "-"], Object.values(LAN).map((a) => `addr add ${a}/32 dev lo`).join("\n") + "\n");
  await sh(["ip", "-batch", "-"], [
    ...Object.values(LAN).map((a) => `route add ${a}/32 via ${lan.address} dev ${lan.hostIfname} table ${routeTable}`),
    `rule add from ${config.containerCidr} table ${routeTable}`,
    "",
  ].join("\n"));
  manager = new NetworkManager(config);
  await manager.recover();
  runtimeCell = await openRuntimeCell("egress");
  httpds.push(await startHttpd(publicHost.netnsPath, publicHost.address, WEB_PORT, "public"));
  httpds.push(await startHttpd(lan.netnsPath, "0.0.0.0", WEB_PORT, "lan"));
  httpds.push(await startHttpd(lan.netnsPath, "0.0.0.0", 53, "dns over tcp"));
  // Another tenant's container: a server in its namespace, as its root.
  other = await manager.setup(`other-${process.pid}`, { appPort: 9090 });
  httpds.push(await startHttpd(other.netnsPath, "0.0.0.0", 9090, "other tenant", ["unshare", "--user", "--map-root-user"]));
}, 120_000);

afterAll(async () => {
  for (const h of httpds) h.stop();
  await runtimeCell?.close();
  await manager?.dispose();
  if (config) await sh(["ip", "rule", "del", "from", config.containerCidr, "table", routeTable]).catch(() => undefined);
  await sh(["ip", "route", "flush", "table", routeTable]).catch(() => undefined);
  await publicHost?.remove();
  await lan?.remove();
  await cell?.remove();
  if (config) await sh(["umount", config.runDir]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe("egress from a container: public open, private closed (Cloud Foundry's default security groups)", () => {
  it("a tenant connects to a public address and gets through", async () => {
    const { results } = await fromContainer({ public: `http://${publicHost.address}:${WEB_PORT}/` });
    expect(results).toEqual({ public: "reached" });
  });

  it("a tenant connects to private networks on the cell's side (RFC 1918, CGNAT: other cells' published ports, databases) and is dropped", async () => {
    const lanControl = await sh(["nsenter", `--net=${lan.netnsPath}`, "busybox", "wget", "-q", "-O", "-", `http://${LAN.rfc1918}:${WEB_PORT}/`]);
    expect(lanControl).toBe("lan");
    const { results } = await fromContainer({
      rfc1918: `http://${LAN.rfc1918}:${WEB_PORT}/`,
      cgnat: `http://${LAN.cgnat}:${WEB_PORT}/`,
      public: `http://${publicHost.address}:${WEB_PORT}/`,
    });
    expect(results).toEqual({ rfc1918: "blocked", cgnat: "blocked", public: "reached" });
  });

  it("a tenant reaches a private range the admin's egress policy allows, but not the part of it the admin denies", async () => {
    const { results } = await fromContainer({
      allowed: `http://${LAN.allowed}:${WEB_PORT}/`,
      denied: `http://${LAN.allowedButDenied}:${WEB_PORT}/`,
    });
    expect(results).toEqual({ allowed: "reached", denied: "blocked" });
  });

  it("a tenant reaches the configured DNS resolver on port 53 only (UDP and TCP), and no other private address on port 53", async () => {
    expect(await manager.resolvConf()).toBe(`nameserver ${LAN.resolver}\n`);
    const resolverUdp = await udpListener(lan.netnsPath, LAN.resolver, 53);
    const otherUdp = await udpListener(lan.netnsPath, LAN.rfc1918, 53);
    try {
      // The query to the other address goes first: once the resolver's has arrived, that one would have too.
      const queries = [`timeout 2 nslookup berth.test ${LAN.rfc1918} >/dev/null 2>&1`, `timeout 2 nslookup berth.test ${LAN.resolver} >/dev/null 2>&1`].join("\n");
      const { results } = await fromContainer({
        dns: `http://${LAN.resolver}:53/`,
        "resolver-web": `http://${LAN.resolver}:${WEB_PORT}/`,
        "other-53": `http://${LAN.rfc1918}:53/`,
      }, queries);
      expect(results).toEqual({ dns: "reached", "resolver-web": "blocked", "other-53": "blocked" });
      await until(() => resolverUdp.received().length > 0);
      expect(resolverUdp.received().length).toBeGreaterThan(0);
      expect(otherUdp.received()).toEqual([]);
    } finally {
      await resolverUdp.stop();
      await otherUdp.stop();
    }
  });

  it("a tenant connects to another container's address, directly or through its published port, and is dropped", async () => {
    const control = await sh(["busybox", "wget", "-q", "-O", "-", `http://${other.containerIp}:9090/`]);
    expect(control).toBe("other tenant");
    const { results } = await fromContainer({
      direct: `http://${other.containerIp}:9090/`,
      published: `http://${cell.address}:${other.hostPort}/`,
    });
    expect(results).toEqual({ direct: "blocked", published: "blocked" });
  });

  it("a tenant connects to the cell's own addresses (its address, its gateway, another container's gateway) and to a loopback service, and is dropped", async () => {
    const any = await listen("0.0.0.0");
    const loopback = await listen("127.0.0.1");
    try {
      const { results, out } = await fromContainer({
        cell: `http://${cell.address}:${portOf(any)}/`,
        gateway: `http://$gw:${portOf(any)}/`,
        "other-gateway": `http://${other.gatewayIp}:${portOf(any)}/`,
        "lan-link": `http://${lan.peerAddress}:${portOf(any)}/`,
        loopback: `http://127.0.0.1:${portOf(loopback)}/`,
      });
      expect(out).toMatch(/^own=[0-9.]+ gw=[0-9.]+$/m);
      expect(results).toEqual({ cell: "blocked", gateway: "blocked", "other-gateway": "blocked", "lan-link": "blocked", loopback: "blocked" });
    } finally {
      any.close();
      loopback.close();
    }
  });

  it("a tenant connects to a link-local metadata address and is dropped", async () => {
    const control = await sh(["nsenter", `--net=${lan.netnsPath}`, "busybox", "wget", "-q", "-O", "-", `http://${LAN.metadata}:${WEB_PORT}/`]);
    expect(control).toBe("lan");
    const { results } = await fromContainer({ metadata: `http://${LAN.metadata}:${WEB_PORT}/` });
    expect(results).toEqual({ metadata: "blocked" });
  });

  it("a tenant forges a source address with a raw socket: refused in the container, and dropped at its veth even with CAP_NET_RAW over its network", async () => {
    const port = 20000 + randomInt(20000);
    const listener = await udpListener(publicHost.netnsPath, publicHost.address, port);
    const forged = { "forged-public": "198.51.100.77", "forged-neighbour": other.containerIp, "forged-cell": cell.address };
    // The genuine packet goes last: on one path, once it has arrived the forged ones would have too.
    const sends = (probe: string, own: string, tag: string) =>
      [...Object.entries(forged).map(([name, src]) => `${probe} send ${src} ${publicHost.address} ${port} ${name}-${tag}`), `${probe} send ${own} ${publicHost.address} ${port} genuine-${tag}`];

    // The tenant, as its container's root: its CAP_NET_RAW is its own user namespace's, not the network's owner's.
    const { out } = await fromContainer({}, sends("/bin/udp-probe", "$own", "tenant").join("\n"), true);
    expect(out.match(/^socket: Operation not permitted$/gm)).toHaveLength(4);

    // A tenant that had CAP_NET_RAW over its network namespace (the host's root in it): only its own address leaves the veth.
    const net = await manager.setup(`spoofer-${process.pid}`, { appPort: 8080 });
    try {
      for (const line of sends(probeBinary, net.containerIp, "raw")) {
        const [probe, ...args] = line.split(" ");
        expect(await sh(["nsenter", `--net=${net.netnsPath}`, probe!, ...args])).toBe("sent\n");
      }
    } finally {
      await manager.teardown(net.containerId);
    }
    await until(() => listener.received().length > 0);
    await listener.stop();
    expect(listener.received()).toEqual([`${publicHost.peerAddress} genuine-raw`]);
  }, 30_000);
});
