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
 * - input: containers reach no service of the host on any of its addresses
 *   (replies to connections the host opened still come back).
 * - forward: containers reach nothing in the container range (each other),
 *   in link-local 169.254.0.0/16 (cloud metadata) or in the denied networks;
 *   into a container only what the port map DNATed. When the agent had to
 *   turn on ip_forward itself, forwarding between other interfaces stays off.
 *
 * Filter chains here only drop; an accept in this table cannot override a
 * drop elsewhere, and other tables' rules are left alone.
 */
import type { NetworkConfig } from "./config";

export const METADATA_RANGE = "169.254.0.0/16";
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

/** Wildcard matching this agent's host veth ends. */
export function vethPattern(config: Pick<NetworkConfig, "ifTag">): string {
  return `${vethPrefix(config)}*`;
}

function element(m: PortMapping): string {
  return `${m.hostPort} : ${m.containerIp} . ${m.appPort}`;
}

/**
 * Replaces the whole table in one transaction (the `add` makes the `delete`
 * safe when it does not exist yet), with the given port mappings. Used at
 * start and recovery, so the live ruleset always matches the records.
 */
export function tableScript(config: NetworkConfig, mappings: readonly PortMapping[], guardForwarding: boolean): string {
  const t = tableName(config);
  const veth = `"${vethPattern(config)}"`;
  const elements = mappings.length > 0 ? ` elements = { ${mappings.map(element).join(", ")} };` : "";
  const denied = [config.containerCidr, METADATA_RANGE, ...config.denyNetworks];
  return [
    `add table inet ${t}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    `  map ports { type inet_service : ipv4_addr . inet_service;${elements} }`,
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
    `    iifname ${veth} drop`,
    `  }`,
    `  chain forward { type filter hook forward priority filter; policy accept;`,
    `    ct state established,related accept`,
    ...denied.map((net) => `    iifname ${veth} ip daddr ${net} drop`),
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

export function listPortsScript(config: NetworkConfig): string {
  return `list map inet ${tableName(config)} ports`;
}
