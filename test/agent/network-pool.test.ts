/**
 * The network manager's pool of prepared namespaces against the real kernel
 * (as root): spares are what setup would make, a setup takes one and the
 * pool refills, a restart (a new manager over the same state, as after
 * kill -9) removes the old spares and keeps the containers, a failed refill
 * is reported and setup still works, and dispose() leaves nothing.
 */
import { get } from "node:http";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NetworkConfig } from "../../agent/network/config";
import { NetworkManager } from "../../agent/network/manager";
import { addIdleLink, hostSnapshot, makeCellAddress, sh, startHttpd, testNetworkConfig, type CellAddress, type Httpd } from "../support/netns";

function hostFetch(url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = get(url, { timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
  });
}

/** This test's host veth ends. */
async function links(config: NetworkConfig): Promise<string[]> {
  const prefix = `brt${config.ifTag}-`;
  return (await sh(["ip", "-o", "link"]))
    .split("\n")
    .map((l) => l.split(": ")[1]?.split("@")[0] ?? "")
    .filter((name) => name.startsWith(prefix))
    .sort();
}

describe.sequential("NetworkManager's pool of prepared namespaces", () => {
  let dir: string;
  let cell: CellAddress;
  let config: NetworkConfig;
  let manager: NetworkManager;
  let before: Awaited<ReturnType<typeof hostSnapshot>>;
  const poolErrors: unknown[] = [];
  const httpds: Httpd[] = [];

  beforeAll(async () => {
    before = await hostSnapshot();
    dir = await mkdtemp(join(tmpdir(), "berth-netpool-"));
    cell = await makeCellAddress();
    config = await testNetworkConfig("p", dir, cell.address, { poolSize: 2 });
    manager = new NetworkManager(config, { onPoolError: (e) => poolErrors.push(e) });
    await manager.recover();
  });

  afterAll(async () => {
    for (const h of httpds) h.stop();
    await manager?.dispose();
    await cell?.remove();
    if (config) await sh(["umount", config.runDir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it("prepares poolSize namespaces like setup's: lo up, eth0 with its /30, a default route, no port", async () => {
    await manager.prewarm();
    const spares = manager.spares();
    expect(spares).toHaveLength(2);
    expect(await readdir(config.runDir)).toEqual(spares.map((s) => `_${s.hostIfname}`).sort());
    expect(await links(config)).toEqual(spares.map((s) => s.hostIfname).sort());
    for (const s of spares) {
      expect(await sh(["nsenter", `--net=${s.netnsPath}`, "ip", "-4", "-o", "addr", "show", "dev", "eth0"])).toContain(`${s.containerIp}/30`);
      expect(await sh(["nsenter", `--net=${s.netnsPath}`, "ip", "-o", "link", "show", "lo"])).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
      expect(await sh(["nsenter", `--net=${s.netnsPath}`, "ip", "route"])).toContain(`default via ${s.hostIp} dev eth0`);
      expect(await sh(["ip", "-4", "-o", "addr", "show", "dev", s.hostIfname])).toContain(`${s.hostIp}/30`);
    }
    expect(await readdir(join(config.stateDir, "containers"))).toEqual([]);
    expect(manager.list()).toEqual([]);
  });

  it("gives a setup a spare, publishes its port and refills the pool with new namespaces", async () => {
    const [first] = manager.spares();
    const a = await manager.setup("app-a", { appPort: 8080 });
    expect(a).toMatchObject({ netnsPath: first!.netnsPath, hostIfname: first!.hostIfname, containerIp: first!.containerIp, gatewayIp: first!.hostIp });
    httpds.push(await startHttpd(a.netnsPath, "0.0.0.0", 8080, "hello from a"));
    expect(await hostFetch(`http://${cell.address}:${a.hostPort}/`)).toBe("hello from a");
    expect(await readdir(join(config.stateDir, "containers"))).toEqual(["app-a.json"]);
    await manager.prewarm();
    const spares = manager.spares();
    expect(spares).toHaveLength(2);
    expect(spares.map((s) => s.slot)).not.toContain(first!.slot);
    expect(await links(config)).toEqual([a.hostIfname, ...spares.map((s) => s.hostIfname)].sort());
    expect(poolErrors).toEqual([]);
  });

  it("keeps containers and replaces the spares when a new agent process recovers (kill -9)", async () => {
    const a = manager.get("app-a")!;
    const oldSpares = manager.spares();
    const restarted = new NetworkManager(config, { onPoolError: (e) => poolErrors.push(e) });
    const report = await restarted.recover();
    manager = restarted; // afterAll disposes whatever the live manager holds
    expect(report.adopted.map((n) => n.containerId)).toEqual(["app-a"]);
    expect(report.orphanLinks.sort()).toEqual(oldSpares.map((s) => s.hostIfname).sort());
    expect(report.orphanNetns.sort()).toEqual(oldSpares.map((s) => basename(s.netnsPath)).sort());
    await restarted.prewarm();
    const spares = restarted.spares();
    expect(spares).toHaveLength(2);
    expect(await links(config)).toEqual([a.hostIfname, ...spares.map((s) => s.hostIfname)].sort());
    expect(await readdir(config.runDir)).toEqual([basename(a.netnsPath), ...spares.map((s) => basename(s.netnsPath))].sort());
    expect(await hostFetch(`http://${cell.address}:${a.hostPort}/`)).toBe("hello from a");
  });

  it("reports a failed refill and still sets up without a spare", async () => {
    const b = await manager.setup("app-b", { appPort: 80 }); // takes a spare, refill starts
    await manager.prewarm();
    // The refill after the next take wants the slot after the last one given: its name is taken.
    const spares = manager.spares();
    const nextSlot = Math.max(...spares.map((s) => s.slot), ...manager.list().map((n) => Number.parseInt(n.hostIfname.split("-").pop()!, 36))) + 1;
    const blocker = `brt${config.ifTag}-${nextSlot.toString(36)}`;
    await addIdleLink(blocker);
    try {
      await manager.setup("app-c", { appPort: 80 }); // takes a spare; the refill in flight fails
      await expect(manager.prewarm()).rejects.toMatchObject({ code: "setup_failed", message: /create veth: RTM_NEWLINK .*: File exists$/ });
      expect(poolErrors).toHaveLength(1);
      expect(await readdir(config.runDir)).not.toContain(`_${blocker}`);
      const d = await manager.setup("app-d", { appPort: 80 }); // the last spare
      expect(d.netnsPath).not.toContain("app-d");
      // The next refill moves past the taken name.
      await manager.prewarm();
      expect(manager.spares()).toHaveLength(2);
      expect(manager.spares().map((s) => s.hostIfname)).not.toContain(blocker);
      expect(await sh(["ip", "-o", "link", "show", blocker])).toContain(blocker); // not the pool's to delete
    } finally {
      await sh(["ip", "link", "del", blocker]).catch(() => undefined);
    }
    for (const id of ["app-b", "app-c", "app-d"]) expect(await manager.teardown(id)).toBe(true);
    expect(manager.list().map((n) => n.containerId)).toEqual(["app-a"]);
    expect(b.hostPort).not.toBe(manager.get("app-a")!.hostPort);
  });

  it("sets up without a spare while the pool is empty", async () => {
    const drained = manager.spares().length;
    const ids = Array.from({ length: drained + 1 }, (_, i) => `burst-${i}`);
    // More setups at once than spares: the last ones make their own namespace.
    const made = await Promise.all(ids.map((id) => manager.setup(id, { appPort: 80 })));
    expect(made.filter((n) => basename(n.netnsPath) === n.containerId).length).toBeGreaterThan(0);
    for (const id of ids) expect(await manager.teardown(id)).toBe(true);
  });

  it("leaves no veth, address, table or namespace file once disposed, spares included", async () => {
    for (const h of httpds.splice(0)) h.stop();
    await manager.prewarm();
    expect(manager.spares()).toHaveLength(2);
    await manager.dispose();
    expect(manager.spares()).toEqual([]);
    expect(await links(config)).toEqual([]);
    await cell.remove();
    const after = await hostSnapshot(config.runDir);
    const ours = (s: string) => [config.cellName, `brt${config.ifTag}-`, cell.ifname].some((m) => s.includes(m));
    expect((["links", "addresses", "tables"] as const).flatMap((k) => after[k].filter((x) => !before[k].includes(x) && ours(x)))).toEqual([]);
    expect(after.netns).toEqual([]);
  });
});
