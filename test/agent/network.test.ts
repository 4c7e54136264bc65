/**
 * The network manager against the real kernel (as root): namespaces, veths,
 * nftables, ip_forward. Two "containers" (busybox httpd entered with nsenter,
 * as the runtime will), an "outside" host and a "metadata" host in namespaces
 * the test makes; the cell address is on a dummy interface the test makes.
 * Each check of a block has a control showing the target is really there.
 */
import { createServer, get, type Server } from "node:http";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NetworkConfig } from "../../agent/network/config";
import { NetworkManager, type ContainerNetwork } from "../../agent/network/manager";
import { native } from "../../agent/native/index";
import { berthTables } from "../../agent/network/host";
import {
  addIdleLink,
  execIn,
  fetchIn,
  hostSnapshot,
  makeCellAddress,
  makeTestHost,
  sh,
  startHttpd,
  testNetworkConfig,
  uniqueTag,
  type CellAddress,
  type Httpd,
  type TestHost,
} from "../support/netns";

/** GET from the host itself (optionally from a given source address): the body, or undefined when it cannot connect. */
function hostFetch(url: string, localAddress?: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = get(url, { localAddress, timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve(body));
      res.on("error", () => resolve(undefined));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
  });
}

/** The IPv6 link-local address of a host interface (the container's way to the host over IPv6). */
async function linkLocal(ifname: string): Promise<string> {
  const match = /inet6 (fe80::[0-9a-f:]+)\//.exec(await sh(["ip", "-6", "-o", "addr", "show", "dev", ifname]));
  if (!match) throw new Error(`${ifname} has no IPv6 link-local address`);
  return match[1]!;
}

function listen(host: string, body: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end(body));
  return new Promise((resolve) => server.listen(0, host, () => resolve({ server, port: (server.address() as { port: number }).port })));
}

/** Links, addresses, tables and namespace files that appeared since `before` and carry one of `markers`. */
function leaks(before: Awaited<ReturnType<typeof hostSnapshot>>, after: Awaited<ReturnType<typeof hostSnapshot>>, markers: string[]): string[] {
  const ours = (s: string) => markers.some((m) => s.includes(m));
  return (["links", "addresses", "tables", "netns"] as const).flatMap((k) => after[k].filter((x) => !before[k].includes(x) && ours(x)));
}

describe.sequential("NetworkManager on a real cell host", () => {
  let dir: string;
  let cell: CellAddress;
  let outside: TestHost;
  let metadata: TestHost;
  let config: NetworkConfig;
  let manager: NetworkManager;
  let before: Awaited<ReturnType<typeof hostSnapshot>>;
  let forwardingBefore: string;
  const httpds: Httpd[] = [];
  let a: ContainerNetwork;
  let b: ContainerNetwork;
  const routeTable = String(20000 + Math.floor(Math.random() * 10000));

  beforeAll(async () => {
    forwardingBefore = (await sh(["cat", "/proc/sys/net/ipv4/ip_forward"])).trim();
    before = await hostSnapshot();
    dir = await mkdtemp(join(tmpdir(), "berth-net-"));
    cell = await makeCellAddress();
    outside = await makeTestHost();
    metadata = await makeTestHost();
    config = await testNetworkConfig("t", dir, cell.address);
    // Only the test's container range is routed to the metadata host, so the
    // machine's own link-local traffic is never diverted.
    await sh(["nsenter", `--net=${metadata.netnsPath}`, "ip", "addr", "add", "169.254.169.254/32", "dev", "lo"]);
    await sh(["ip", "-batch", "-"], [
      `route add 169.254.169.254/32 via ${metadata.address} dev ${metadata.hostIfname} table ${routeTable}`,
      `rule add from ${config.containerCidr} to 169.254.169.254/32 table ${routeTable}`,
      "",
    ].join("\n"));
    manager = new NetworkManager(config);
    const report = await manager.recover();
    expect(report.adopted).toEqual([]);
  });

  afterAll(async () => {
    for (const h of httpds) h.stop();
    await manager?.dispose();
    if (config) await sh(["ip", "rule", "del", "from", config.containerCidr, "to", "169.254.169.254/32", "table", routeTable]).catch(() => undefined);
    await sh(["ip", "route", "flush", "table", routeTable]).catch(() => undefined);
    await outside?.remove();
    await metadata?.remove();
    await cell?.remove();
    if (config) await sh(["umount", config.runDir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it("serves two containers at cellAddress:hostPort on different host ports, from outside and from the host", async () => {
    a = await manager.setup("app-a", { appPort: 8080 });
    b = await manager.setup("app-b", { appPort: 9090 });
    expect(a.hostPort).not.toBe(b.hostPort);
    expect(a.containerIp).not.toBe(b.containerIp);
    expect(a.cellAddress).toBe(cell.address);
    for (const p of [a.hostPort, b.hostPort]) expect(p).toBeGreaterThanOrEqual(config.hostPorts.min);
    httpds.push(await startHttpd(a.netnsPath, "0.0.0.0", 8080, "hello from a"));
    // b runs as the runtime will start it: joins the namespace first, then unshares its user namespace.
    httpds.push(await startHttpd(b.netnsPath, "0.0.0.0", 9090, "hello from b", ["unshare", "--user", "--map-root-user"]));

    const [fromOutsideA, fromOutsideB, fromHostA, fromHostB] = await Promise.all([
      fetchIn(outside.netnsPath, `http://${cell.address}:${a.hostPort}/`),
      fetchIn(outside.netnsPath, `http://${cell.address}:${b.hostPort}/`),
      hostFetch(`http://${cell.address}:${a.hostPort}/`),
      hostFetch(`http://${cell.address}:${b.hostPort}/`),
    ]);
    expect([fromOutsideA, fromOutsideB, fromHostA, fromHostB]).toEqual(["hello from a", "hello from b", "hello from a", "hello from b"]);
  });

  it("gives the container lo, eth0 with its /30 and a default route via the host end", async () => {
    const addrs = await sh(["nsenter", `--net=${a.netnsPath}`, "ip", "-4", "-o", "addr"]);
    expect(addrs).toContain(`eth0    inet ${a.containerIp}/30`);
    expect(addrs).toContain("lo    inet 127.0.0.1/8");
    expect(await sh(["nsenter", `--net=${a.netnsPath}`, "ip", "-o", "link", "show", "lo"])).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    expect(await sh(["nsenter", `--net=${a.netnsPath}`, "ip", "route"])).toContain(`default via ${a.gatewayIp} dev eth0`);
  });

  it("lets the container's root (in its own user namespace) and a non-root user listen on ports below 1024, without changing the host's setting", async () => {
    const hostStart = (await sh(["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"])).trim();
    expect((await execIn(a.netnsPath, ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"])).stdout.trim()).toBe("0");
    httpds.push(await startHttpd(a.netnsPath, a.containerIp, 80, "root on 80", ["unshare", "--user", "--map-root-user"]));
    expect(await fetchIn(a.netnsPath, `http://${a.containerIp}:80/`)).toBe("root on 80");
    // nobody listening on 443: it holds until timeout(1) ends it (124) in the container's namespace,
    // and fails at once (nc exits 1) in a namespace with the host's setting (the control).
    expect(hostStart).not.toBe("0");
    const nobodyListens = ["timeout", "1", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "busybox", "nc", "-l", "-p", "443"];
    expect((await execIn(a.netnsPath, nobodyListens)).code).toBe(124);
    expect((await execIn(outside.netnsPath, nobodyListens)).code).toBe(1);
    expect((await sh(["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"])).trim()).toBe(hostStart);
  });

  it("leaves the container's root, in its own user namespace, unable to change its addresses or routes", async () => {
    const asContainerRoot = (argv: string[]) => execIn(a.netnsPath, ["unshare", "--user", "--map-root-user", ...argv]);
    expect((await asContainerRoot(["ip", "addr", "add", "10.9.9.9/32", "dev", "eth0"])).code).not.toBe(0);
    expect((await asContainerRoot(["ip", "route", "del", "default"])).code).not.toBe(0);
    expect(await sh(["nsenter", `--net=${a.netnsPath}`, "ip", "route"])).toContain(`default via ${a.gatewayIp} dev eth0`);
  });

  it("lets a container reach an outside host, masqueraded as the cell host", async () => {
    httpds.push(await startHttpd(outside.netnsPath, outside.address, 8000, "outside"));
    expect(await fetchIn(a.netnsPath, `http://${outside.address}:8000/`)).toBe("outside");
    expect(await fetchIn(a.netnsPath, `http://${outside.address}:8000/cgi-bin/peer`)).toBe(outside.peerAddress);
  });

  it("keeps a container from the other container, directly or through its published port", async () => {
    const [direct, published, controlDirect] = await Promise.all([
      fetchIn(a.netnsPath, `http://${b.containerIp}:9090/`),
      fetchIn(a.netnsPath, `http://${cell.address}:${b.hostPort}/`),
      hostFetch(`http://${b.containerIp}:9090/`),
    ]);
    expect(controlDirect).toBe("hello from b");
    expect(direct).toBeUndefined();
    expect(published).toBeUndefined();
  });

  it("keeps a container from the host's services on every host address and on loopback", async () => {
    const token = `host-${uniqueTag(8)}`;
    const anyAddr = await listen("::", token); // IPv4 and IPv6
    const loopback = await listen("127.0.0.1", token);
    try {
      const [viaCell, viaGateway, viaOutsideLink, viaLinkLocal6, viaLoopback, controlOutside, controlLoopback] = await Promise.all([
        fetchIn(a.netnsPath, `http://${cell.address}:${anyAddr.port}/`),
        fetchIn(a.netnsPath, `http://${a.gatewayIp}:${anyAddr.port}/`),
        fetchIn(a.netnsPath, `http://${outside.peerAddress}:${anyAddr.port}/`),
        fetchIn(a.netnsPath, `http://[${await linkLocal(a.hostIfname)}%eth0]:${anyAddr.port}/`),
        fetchIn(a.netnsPath, `http://127.0.0.1:${loopback.port}/`),
        fetchIn(outside.netnsPath, `http://${cell.address}:${anyAddr.port}/`),
        hostFetch(`http://127.0.0.1:${loopback.port}/`),
      ]);
      expect(controlOutside).toBe(token);
      expect(controlLoopback).toBe(token);
      expect([viaCell, viaGateway, viaOutsideLink, viaLinkLocal6, viaLoopback]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    } finally {
      anyAddr.server.close();
      loopback.server.close();
    }
  });

  it("keeps a container from link-local metadata at 169.254.169.254", async () => {
    httpds.push(await startHttpd(metadata.netnsPath, "169.254.169.254", 80, "metadata"));
    // Control: the host, speaking from an address of the container range, is
    // routed to the metadata host and gets an answer.
    expect(await hostFetch("http://169.254.169.254/", a.gatewayIp)).toBe("metadata");
    expect(await fetchIn(a.netnsPath, "http://169.254.169.254/")).toBeUndefined();
  });

  it("forwards only container traffic when it had to turn ip_forward on itself", async () => {
    httpds.push(await startHttpd(metadata.netnsPath, metadata.address, 81, "routed"));
    // The outside host routes through the cell host to the metadata host: no
    // container is involved, so this is the host's own forwarding.
    const routed = await fetchIn(outside.netnsPath, `http://${metadata.address}:81/`);
    expect(routed).toBe(forwardingBefore === "0" ? undefined : "routed");
  });

  it("blocks by policy: without the table the same probes connect, and recover() puts it back", async () => {
    const token = `host-${uniqueTag(8)}`;
    const service = await listen("::", token);
    const gateway6 = await linkLocal(a.hostIfname);
    const probes = () =>
      Promise.all([
        fetchIn(a.netnsPath, `http://${b.containerIp}:9090/`),
        fetchIn(a.netnsPath, `http://${a.gatewayIp}:${service.port}/`),
        fetchIn(a.netnsPath, `http://[${gateway6}%eth0]:${service.port}/`),
        fetchIn(a.netnsPath, "http://169.254.169.254/"),
        fetchIn(outside.netnsPath, `http://${metadata.address}:81/`),
      ]);
    try {
      await native.nftRun(`delete table inet berth_${config.cellName}`);
      expect(await probes()).toEqual(["hello from b", token, token, "metadata", "routed"]);
      const report = await manager.recover();
      expect(report.adopted.map((n) => n.containerId).sort()).toEqual(["app-a", "app-b"]);
      expect(await probes()).toEqual([undefined, undefined, undefined, undefined, forwardingBefore === "0" ? undefined : "routed"]);
      expect(await hostFetch(`http://${cell.address}:${b.hostPort}/`)).toBe("hello from b");
    } finally {
      service.server.close();
    }
  });

  it("gives containers a resolv.conf without loopback nameservers", async () => {
    const hostConf = join(dir, "resolv.conf");
    await writeFile(hostConf, "search cell.internal\nnameserver 127.0.0.53\noptions edns0\n");
    const m = new NetworkManager({ ...config, hostResolvConf: hostConf, fallbackNameservers: ["198.18.0.53"] });
    expect(await m.resolvConf()).toBe("search cell.internal\noptions edns0\nnameserver 198.18.0.53\n");
  });

  it("keeps host ports apart across a restart and reconciles the live state with the records", async () => {
    // Leftovers a crash could leave: a record whose namespace is gone, a veth
    // and a namespace file of nobody, a port map element of nobody.
    const ghostPort = config.hostPorts.max;
    await writeFile(
      join(config.stateDir, "containers", "ghost.json"),
      JSON.stringify({ version: 1, containerId: "ghost", slot: 60, hostIfname: `brt${config.ifTag}-1o`, netnsPath: join(config.runDir, "ghost"), hostIp: "10.0.0.1", containerIp: "10.0.0.2", hostPort: ghostPort - 1, appPort: 1 }),
    );
    await writeFile(join(config.stateDir, "containers", "broken.json"), "{not json");
    await addIdleLink(`brt${config.ifTag}-zz`);
    await writeFile(join(config.runDir, "stray"), "");
    await native.nftRun(`add element inet berth_${config.cellName} ports { ${ghostPort} : 10.0.0.9 . 80 }`);

    const restarted = new NetworkManager(config);
    const report = await restarted.recover();
    expect(report.adopted.map((n) => [n.containerId, n.hostPort]).sort()).toEqual([["app-a", a.hostPort], ["app-b", b.hostPort]]);
    expect(report.discarded).toEqual(["ghost"]);
    expect(report.unreadableRecords).toEqual([join(config.stateDir, "containers", "broken.json")]);
    expect(report.orphanLinks).toEqual([`brt${config.ifTag}-zz`]);
    expect(report.orphanNetns).toEqual(["stray"]);
    expect(report.orphanPorts).toEqual([ghostPort]);
    expect(await readdir(config.runDir)).toEqual(["app-a", "app-b"].sort());
    expect((await sh(["ip", "-o", "link"])).includes(`brt${config.ifTag}-zz`)).toBe(false);

    // Adopted containers keep serving through the rewritten table.
    expect(await hostFetch(`http://${cell.address}:${a.hostPort}/`)).toBe("hello from a");
    const c = await restarted.setup("app-c", { appPort: 8080 });
    expect([a.hostPort, b.hostPort]).not.toContain(c.hostPort);
    expect([a.containerIp, b.containerIp]).not.toContain(c.containerIp);
    manager = restarted; // afterAll disposes whatever the live manager holds
  });

  it("refuses bad input with clear errors and leaves nothing behind when the port range runs out", async () => {
    await expect(manager.setup("../etc", { appPort: 8080 })).rejects.toMatchObject({ code: "invalid_container_id" });
    await expect(manager.setup("x", { appPort: 0 })).rejects.toMatchObject({ code: "invalid_app_port" });
    await expect(manager.setup("x", { appPort: 1.5 })).rejects.toMatchObject({ code: "invalid_app_port" });
    await expect(manager.setup("app-a", { appPort: 8080 })).rejects.toMatchObject({ code: "already_exists" });
    await expect(new NetworkManager(config).setup("y", { appPort: 80 })).rejects.toMatchObject({ code: "not_recovered" });
    // A namespace file already in the way: setup fails, and its record, port and slot are released.
    await writeFile(join(config.runDir, "in-the-way"), "");
    await expect(manager.setup("in-the-way", { appPort: 80 })).rejects.toMatchObject({ code: "setup_failed", message: /File exists/ });
    expect(manager.get("in-the-way")).toBeUndefined();
    expect(await readdir(join(config.stateDir, "containers"))).not.toContain("in-the-way.json");
    await rm(join(config.runDir, "in-the-way"));
    const size = config.hostPorts.max - config.hostPorts.min + 1;
    const extra: string[] = [];
    for (let i = manager.list().length; i < size; i++) extra.push((await manager.setup(`fill-${i}`, { appPort: 80 })).containerId);
    const files = await readdir(config.runDir);
    await expect(manager.setup("one-too-many", { appPort: 80 })).rejects.toMatchObject({ code: "ports_exhausted" });
    expect(await readdir(config.runDir)).toEqual(files);
    for (const id of extra) expect(await manager.teardown(id)).toBe(true);
    expect(await manager.teardown("never-made")).toBe(false);
  });

  it("rejects a failed native setup and undoes it (an interface name that is taken)", async () => {
    const taken = join(config.runDir, "taken");
    await expect(
      native.netSetup({ netnsPath: taken, hostIfname: cell.ifname, hostAddress: "10.0.0.1", containerAddress: "10.0.0.2", prefixLength: 30 }),
    ).rejects.toMatchObject({ name: "NativeError", step: "create veth", syscall: "RTM_NEWLINK", code: "EEXIST", path: cell.ifname });
    expect(await readdir(config.runDir)).not.toContain("taken");
    expect(await sh(["ip", "-o", "link", "show", cell.ifname])).toContain(cell.ifname); // not someone else's to delete
    expect(() => native.netSetup({ netnsPath: "relative", hostIfname: "x", hostAddress: "10.0.0.1", containerAddress: "10.0.0.2", prefixLength: 30 })).toThrow(TypeError);
    expect(() => native.netSetup({ netnsPath: "/tmp/x", hostIfname: "a-name-too-long-for-linux", hostAddress: "10.0.0.1", containerAddress: "10.0.0.2", prefixLength: 30 })).toThrow(/interface name/);
    expect(() => native.netSetup({ netnsPath: "/tmp/x", hostIfname: "x", hostAddress: "10.0.0.999", containerAddress: "10.0.0.2", prefixLength: 30 })).toThrow(/IPv4/);
    await expect(native.nftRun("add table inet")).rejects.toThrow(/^nft: .*syntax error/s);
  });

  it("tears down without leaving a veth, address, rule, namespace file or record", async () => {
    for (const n of manager.list()) expect(await manager.teardown(n.containerId)).toBe(true);
    expect(await readdir(config.runDir)).toEqual([]);
    expect(await readdir(join(config.stateDir, "containers"))).toEqual([]);
    const elements = await native.nftRun(`list map inet berth_${config.cellName} ports`, true);
    expect(elements).not.toContain('"elem"');
    expect((await sh(["ip", "-o", "link"])).includes(`brt${config.ifTag}-`)).toBe(false);
    await manager.dispose();
    for (const h of httpds.splice(0)) h.stop();
    await sh(["ip", "rule", "del", "from", config.containerCidr, "to", "169.254.169.254/32", "table", routeTable]);
    await sh(["ip", "route", "flush", "table", routeTable]);
    await outside.remove();
    await metadata.remove();
    await cell.remove();
    const after = await hostSnapshot(config.runDir);
    const markers = [config.cellName, `brt${config.ifTag}-`, cell.ifname, outside.hostIfname, metadata.hostIfname, config.containerCidr.replace(/0\/24$/, "")];
    expect(leaks(before, after, markers)).toEqual([]);
    expect(after.netns).toEqual([]);
    // ip_forward is back as it was unless another Berth table (another agent) still needs it.
    if ((await berthTables()).length === 0) expect((await sh(["cat", "/proc/sys/net/ipv4/ip_forward"])).trim()).toBe(forwardingBefore);
  });
});
