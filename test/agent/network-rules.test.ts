/** The network manager's pure decisions: config validation, address arithmetic, allocation, resolv.conf, recovery, the nft script. */
import { describe, expect, it } from "vitest";
import { pickFree } from "../../agent/network/allocate";
import { parseNetworkConfig } from "../../agent/network/config";
import { cidrContains, ipv4ToNumber, numberToIpv4, parseCidr, slotAddresses, slotCount } from "../../agent/network/ipv4";
import { PRIVATE_NETWORKS, publishScript, resolversScript, tableScript, withdrawScript } from "../../agent/network/nft-rules";
import type { NetworkRecord } from "../../agent/network/records";
import { planRecovery } from "../../agent/network/recovery";
import { containerNameservers, containerResolvConf } from "../../agent/network/resolv-conf";

const valid = {
  cellName: "c1",
  ifTag: "c1",
  containerCidr: "10.255.0.0/22",
  cellAddress: "198.18.0.1",
  hostPorts: { min: 61001, max: 65000 },
  runDir: "/run/berth/netns",
  stateDir: "/var/lib/berth/network",
};

describe("ipv4", () => {
  it("converts addresses both ways, including the top bit", () => {
    expect(ipv4ToNumber("255.255.255.254")).toBe(0xfffffffe);
    expect(numberToIpv4(0xfffffffe)).toBe("255.255.255.254");
    expect(() => ipv4ToNumber("10.0.0.256")).toThrow(TypeError);
  });

  it("cuts a /22 into 256 /30 blocks, host end .1 and container .2", () => {
    const range = parseCidr("10.255.0.0/22");
    expect(slotCount(range)).toBe(256);
    expect(slotAddresses(range, 0)).toEqual({ hostIp: "10.255.0.1", containerIp: "10.255.0.2" });
    expect(slotAddresses(range, 255)).toEqual({ hostIp: "10.255.3.253", containerIp: "10.255.3.254" });
    expect(() => slotAddresses(range, 256)).toThrow(RangeError);
    expect(cidrContains(range, ipv4ToNumber("10.255.3.255"))).toBe(true);
    expect(cidrContains(range, ipv4ToNumber("10.255.4.0"))).toBe(false);
  });

  it("refuses a CIDR with host bits or a bad prefix", () => {
    expect(() => parseCidr("10.255.0.1/22")).toThrow(/host bits/);
    expect(() => parseCidr("10.255.0.0/33")).toThrow(TypeError);
    expect(() => parseCidr("10.255.0.0")).toThrow(TypeError);
  });
});

describe("pickFree", () => {
  it("goes round-robin after the last pick, skipping used numbers and wrapping", () => {
    expect(pickFree(10, 14, new Set(), 0)).toBe(10);
    expect(pickFree(10, 14, new Set([12]), 11)).toBe(13);
    expect(pickFree(10, 14, new Set([10]), 14)).toBe(11);
    expect(pickFree(10, 12, new Set([10, 11, 12]), 11)).toBeUndefined();
  });
});

describe("containerResolvConf", () => {
  it("drops loopback nameservers and keeps the host's others and its search/options lines", () => {
    const host = "# generated\nsearch corp.example\nnameserver 127.0.0.53\nnameserver 198.18.0.53\nnameserver ::1\noptions ndots:2\n";
    expect(containerResolvConf(host, ["1.1.1.1"])).toBe("# generated\nsearch corp.example\noptions ndots:2\nnameserver 198.18.0.53\n");
  });

  it("falls back when the host has only loopback nameservers, or none", () => {
    expect(containerResolvConf("nameserver 127.0.0.1\n", ["1.1.1.1", "8.8.8.8"])).toBe("nameserver 1.1.1.1\nnameserver 8.8.8.8\n");
    expect(containerResolvConf("", ["1.1.1.1"])).toBe("nameserver 1.1.1.1\n");
    expect(containerNameservers("nameserver 127.0.0.53\nnameserver 10.0.0.2\n", ["1.1.1.1"])).toEqual(["10.0.0.2"]);
    expect(containerNameservers("nameserver 127.0.0.53\n", ["1.1.1.1"])).toEqual(["1.1.1.1"]);
  });
});

function record(containerId: string, slot: number, hostPort: number): NetworkRecord {
  return {
    version: 1,
    containerId,
    slot,
    hostIfname: `brtx-${slot}`,
    netnsPath: `/run/berth/netns/${containerId}`,
    hostIp: `10.0.0.${slot * 4 + 1}`,
    containerIp: `10.0.0.${slot * 4 + 2}`,
    hostPort,
    appPort: 8080,
  };
}

describe("planRecovery", () => {
  const range = parseCidr("10.0.0.0/24");
  it("adopts whole records, discards broken or out-of-range ones and names every orphan", () => {
    const whole = record("a", 0, 61001);
    const noVeth = record("b", 1, 61002);
    const outOfRange = { ...record("c", 2, 61003), containerIp: "10.9.0.2" };
    const plan = planRecovery(
      [whole, noVeth, outOfRange],
      {
        links: new Set(["brtx-0", "brtx-2", "brtx-9"]),
        netns: new Set(["a", "b", "c", "stray"]),
        ports: [
          { hostPort: 61001, containerIp: whole.containerIp, appPort: 8080 },
          { hostPort: 61002, containerIp: noVeth.containerIp, appPort: 8080 },
        ],
      },
      range,
    );
    expect(plan.adopt).toEqual([whole]);
    expect(plan.discard).toEqual([noVeth, outOfRange]);
    expect(plan.orphanLinks).toEqual(["brtx-2", "brtx-9"]);
    expect(plan.orphanNetns).toEqual(["b", "c", "stray"]);
    expect(plan.orphanPorts.map((p) => p.hostPort)).toEqual([61002]);
  });

  it("keeps only the first of two records claiming one host port", () => {
    const first = record("a", 0, 61001);
    const clash = { ...record("b", 1, 61001) };
    const plan = planRecovery([clash, first], { links: new Set(["brtx-0", "brtx-1"]), netns: new Set(["a", "b"]), ports: [] }, range);
    expect(plan.adopt.map((r) => r.containerId)).toEqual(["a"]);
    expect(plan.discard.map((r) => r.containerId)).toEqual(["b"]);
    expect(plan.orphanLinks).toEqual(["brtx-1"]);
  });
});

describe("nft script", () => {
  const config = parseNetworkConfig({ ...valid, denyNetworks: ["198.18.7.0/24"] });
  const mapping = { hostPort: 61001, containerIp: "10.255.0.2", appPort: 8080 };

  it("replaces the whole table in one transaction, with the mappings as map elements", () => {
    const script = tableScript(config, [mapping], false);
    expect(script.split("\n").slice(0, 3)).toEqual(["add table inet berth_c1", "delete table inet berth_c1", "table inet berth_c1 {"]);
    expect(script).toContain("elements = { 61001 : 10.255.0.2 . 8080 }");
    expect(script).toContain('iifname "brtc1-*" ip daddr 198.18.7.0/24 drop');
    expect(script).not.toContain('iifname != "brt*"');
  });

  it("closes private networks after the admin's deny and allow lists and DNS to the resolvers, in that order", () => {
    const c = parseNetworkConfig({ ...valid, denyNetworks: ["172.20.1.128/25"], allowNetworks: ["172.20.1.0/24"] });
    const lines = tableScript(c, [], false, ["192.168.1.53"]).split("\n").map((l) => l.trim());
    const at = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
    const forward = at("chain forward");
    const order = [
      at('iifname "brtc1-*" ip daddr 10.255.0.0/22 drop'),
      at('iifname "brtc1-*" ip daddr 172.20.1.128/25 drop'),
      at('iifname "brtc1-*" ip daddr 172.20.1.0/24 accept'),
      lines.indexOf('iifname "brtc1-*" ip daddr @resolvers meta l4proto { tcp, udp } th dport 53 accept', forward),
      at(`iifname "brtc1-*" ip daddr { ${PRIVATE_NETWORKS.join(", ")} } drop`),
      at('iifname "brtc1-*" accept'),
    ];
    expect(order.every((i) => i > forward)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(lines).toContain("set resolvers { type ipv4_addr; elements = { 192.168.1.53 }; }");
    expect(PRIVATE_NETWORKS).toEqual(expect.arrayContaining(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8"]));
  });

  it("lists every /30's veth and container address as the only sources a veth may send from", () => {
    const script = tableScript(parseNetworkConfig({ ...valid, containerCidr: "10.255.0.0/29" }), [], false);
    expect(script).toContain('set sources { type ifname . ipv4_addr; elements = { "brtc1-0" . 10.255.0.2, "brtc1-1" . 10.255.0.6 }; }');
    expect(script).toContain('iifname "brtc1-*" meta nfproto ipv4 iifname . ip saddr != @sources drop');
    expect(resolversScript(config, ["10.0.0.2", "10.0.0.3"])).toBe("add element inet berth_c1 resolvers { 10.0.0.2, 10.0.0.3 }");
  });

  it("adds the forwarding guard only when Berth turned ip_forward on", () => {
    expect(tableScript(config, [], true)).toContain('iifname != "brt*" oifname != "brt*" drop');
  });

  it("publishes one element and withdraws it even when it is already gone", () => {
    expect(publishScript(config, mapping)).toBe("add element inet berth_c1 ports { 61001 : 10.255.0.2 . 8080 }");
    expect(withdrawScript(config, mapping).split("\n")).toEqual([
      "add element inet berth_c1 ports { 61001 : 10.255.0.2 . 8080 }",
      "delete element inet berth_c1 ports { 61001 }",
    ]);
  });
});

describe("network config", () => {

  it("fills defaults", () => {
    const c = parseNetworkConfig(valid);
    expect(c.denyNetworks).toEqual([]);
    expect(c.allowNetworks).toEqual([]);
    expect(c.hostResolvConf).toBe("/etc/resolv.conf");
    expect(c.poolSize).toBe(0);
  });

  it.each([
    ["cellName", { cellName: "Bad-Name" }],
    ["ifTag", { ifTag: "toolong" }],
    ["containerCidr", { containerCidr: "10.255.0.1/22" }],
    ["containerCidr", { containerCidr: "10.255.0.0/31" }],
    ["containerCidr", { containerCidr: "fd00::/64" }],
    ["cellAddress", { cellAddress: "127.0.0.1" }],
    ["cellAddress", { cellAddress: "0.0.0.0" }],
    ["cellAddress", { cellAddress: "10.255.1.1" }],
    ["cellAddress", { cellAddress: "cell.local" }],
    ["hostPorts", { hostPorts: { min: 65000, max: 61001 } }],
    ["hostPorts.min", { hostPorts: { min: 80, max: 90 } }],
    ["runDir", { runDir: "relative/dir" }],
    ["denyNetworks.0", { denyNetworks: ["not-a-cidr"] }],
    ["allowNetworks.0", { allowNetworks: ["10.255.0.0/16"] }],
    ["allowNetworks.0", { allowNetworks: ["10.0.0.0/33"] }],
    ["containerCidr", { containerCidr: "10.0.0.0/15" }],
    ["fallbackNameservers", { fallbackNameservers: [] }],
    ["poolSize", { poolSize: -1 }],
    ["poolSize", { poolSize: 1.5 }],
  ])("names %s when it is invalid", (field, patch) => {
    expect(() => parseNetworkConfig({ ...valid, ...patch })).toThrow(expect.objectContaining({ field }));
  });
});
