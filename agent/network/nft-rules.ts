/**
 * @module The cell's nftables ruleset, as nft script text built from
 * validated config only (never from a container's own input).
 *
 * One table `inet berth_<cell>` holds everything:
 * - map `ports`: host port → container address . app port. Publishing or
 *   withdrawing a port is one element change, nothing else per container.
 * - prerouting/output: DNAT to the map for traffic to the cell address, from
 *   outside and from the host itself.
 * - postrouting: masquerade what containers send out of the host.
 * - spoofing (prerouting, before conntrack): a packet from a container's
 *   veth whose source is not that container's own address is dropped. The
 *   set `sources` lists every /30's veth name and container address, fixed
 *   by the range, so nothing changes per container. Defence in depth: the
 *   container's root has CAP_NET_RAW only in its own user namespace, which
 *   does not own the network namespace, so it cannot open a raw socket there.
 * - input: containers reach no service of the host on any of its addresses
 *   (replies to connections the host opened still come back), except DNS to
 *   the resolvers containers are given.
 * - forward: egress like Cloud Foundry's default security groups. Never the
 *   container range (each other); then the admin's denyNetworks; then the
 *   admin's allowNetworks are opened; DNS (port 53) to the `resolvers` set;
 *   then PRIVATE_NETWORKS (RFC 1918, CGNAT, loopback, link-local with the
 *   cloud metadata services, multicast, reserved) are closed and every other
 *   (public) IPv4 address is open. Into a container only what the port map
 *   DNATed. When the agent had to turn on ip_forward itself, forwarding
 *   between other interfaces stays off.
 *
 * Filter chains here only drop; an accept in this table cannot override a
 * drop elsewhere, and other tables' rules are left alone.
 */
import type { NetworkConfig } from "./config";
import { parseCidr, slotAddresses, slotCount } from "./ipv4";

/**
 * What containers may not reach unless the admin's allowNetworks opens it:
 * Cloud Foundry's default security groups open only public networks (not
 * 10/8, 172.16/12, 192.168/16, 169.254/16); CGNAT, loopback, "this network",
 * multicast and the reserved 240/4 are not public either.
 */
export const PRIVATE_NETWORKS = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "224.0.0.0/4",
  "240.0.0.0/4",
];
/** Every Berth host veth starts with this, whatever its agent's tag. */
export const VETH_PREFIX = "brt";

export interface PortMapping {
  hostPort: number;
  containerIp: string;
  appPort: number;
}

export function tableName(config: Pick<NetworkConfig, "cellName">): string {
  return `berth_${config.cellName}`;
}

/** What this agent's host veth ends start with: `brt<ifTag>-`, then the slot. */
export function vethPrefix(config: Pick<NetworkConfig, "ifTag">): string {
  return `${VETH_PREFIX}${config.ifTag}-`;
}

/** The host end of the veth of block `slot`. */
export function hostIfname(config: Pick<NetworkConfig, "ifTag">, slot: number): string {
  return `${vethPrefix(config)}${slot.toString(36)}`;
}

/** Every veth name and the one source address allowed on it: all slots of the range. */
function sourceElements(config: NetworkConfig): string[] {
  const range = parseCidr(config.containerCidr);
  return Array.from({ length: slotCount(range) }, (_, slot) => `"${hostIfname(config, slot)}" . ${slotAddresses(range, slot).containerIp}`);
}

const set = (elements: readonly string[]) => (elements.length > 0 ? ` elements = { ${elements.join(", ")} };` : "");

/** Wildcard matching this agent's host veth ends. */
export function vethPattern(config: Pick<NetworkConfig, "ifTag">): string {
  return `${vethPrefix(config)}*`;
}

function element(m: PortMapping): string {
  return `${m.hostPort} : ${m.containerIp} . ${m.appPort}`;
}

/**
 * Replaces the whole table in one transaction (the `add` makes the `delete`
 * safe when it does not exist yet), with the given port mappings and DNS
 * resolvers. Used at start and recovery, so the live ruleset always matches
 * the records.
 */
export function tableScript(config: NetworkConfig, mappings: readonly PortMapping[], guardForwarding: boolean, resolvers: readonly string[] = []): string {
  const t = tableName(config);
  const veth = `"${vethPattern(config)}"`;
  const dns = `ip daddr @resolvers meta l4proto { tcp, udp } th dport 53 accept`;
  return [
    `add table inet ${t}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    `  map ports { type inet_service : ipv4_addr . inet_service;${set(mappings.map(element))} }`,
    `  set sources { type ifname . ipv4_addr;${set(sourceElements(config))} }`,
    `  set resolvers { type ipv4_addr;${set(resolvers)} }`,
    `  chain spoofing { type filter hook prerouting priority raw; policy accept;`,
    `    iifname ${veth} meta nfproto ipv4 iifname . ip saddr != @sources drop`,
    `  }`,
    `  chain prerouting { type nat hook prerouting priority dstnat; policy accept;`,
    `    ip daddr ${config.cellAddress} dnat ip to tcp dport map @ports`,
    `  }`,
    `  chain output { type nat hook output priority -100; policy accept;`,
    `    ip daddr ${config.cellAddress} dnat ip to tcp dport map @ports`,
    `  }`,
    `  chain postrouting { type nat hook postrouting priority srcnat; policy accept;`,
    `    ip saddr ${config.containerCidr} oifname != ${veth} masquerade`,
    `  }`,
    `  chain input { type filter hook input priority filter; policy accept;`,
    `    iifname ${veth} ct state established,related accept`,
    `    iifname ${veth} ${dns}`,
    `    iifname ${veth} drop`,
    `  }`,
    `  chain forward { type filter hook forward priority filter; policy accept;`,
    `    ct state established,related accept`,
    `    iifname ${veth} ip daddr ${config.containerCidr} drop`,
    ...config.denyNetworks.map((net) => `    iifname ${veth} ip daddr ${net} drop`),
    ...config.allowNetworks.map((net) => `    iifname ${veth} ip daddr ${net} accept`),
    `    iifname ${veth} ${dns}`,
    `    iifname ${veth} ip daddr { ${PRIVATE_NETWORKS.join(", ")} } drop`,
    `    iifname ${veth} meta nfproto != ipv4 drop`,
    `    iifname ${veth} accept`,
    `    oifname ${veth} ct status dnat accept`,
    `    oifname ${veth} drop`,
    ...(guardForwarding ? [`    iifname != "${VETH_PREFIX}*" oifname != "${VETH_PREFIX}*" drop`] : []),
    `  }`,
    `}`,
  ].join("\n");
}

export function deleteTableScript(config: Pick<NetworkConfig, "cellName">): string {
  return `add table inet ${tableName(config)}\ndelete table inet ${tableName(config)}`;
}

export function publishScript(config: NetworkConfig, m: PortMapping): string {
  return `add element inet ${tableName(config)} ports { ${element(m)} }`;
}

/** Withdraws a mapping; the `add` first makes it succeed when the element is already gone. */
export function withdrawScript(config: NetworkConfig, m: PortMapping): string {
  const t = tableName(config);
  return `add element inet ${t} ports { ${element(m)} }\ndelete element inet ${t} ports { ${m.hostPort} }`;
}

/** Adds resolvers containers are given (already present ones are no change). */
export function resolversScript(config: Pick<NetworkConfig, "cellName">, resolvers: readonly string[]): string {
  return `add element inet ${tableName(config)} resolvers { ${resolvers.join(", ")} }`;
}

export function listPortsScript(config: NetworkConfig): string {
  return `list map inet ${tableName(config)} ports`;
}
