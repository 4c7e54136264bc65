/**
 * @module Recovery after an agent restart, decided before anything is
 * touched (compare, then act): which records still have their namespace and
 * veth and are adopted, which are broken and torn down, and which live
 * veths, namespace files and port map elements belong to no record.
 */
import { basename } from "node:path";
import { cidrContains, ipv4ToNumber, type Cidr } from "./ipv4";
import type { PortMapping } from "./nft-rules";
import type { NetworkRecord } from "./records";

export interface LiveNetwork {
  /** This agent's host veth ends. */
  links: ReadonlySet<string>;
  /** File names in the run dir. */
  netns: ReadonlySet<string>;
  ports: readonly PortMapping[];
}

export interface RecoveryPlan {
  adopt: NetworkRecord[];
  /** Records whose namespace or veth is gone, or that clash with an adopted one: remove what is left. */
  discard: NetworkRecord[];
  orphanLinks: string[];
  orphanNetns: string[];
  /** Map elements no adopted record accounts for (dropped when the table is rewritten). */
  orphanPorts: PortMapping[];
}

function samePort(a: PortMapping, b: PortMapping): boolean {
  return a.hostPort === b.hostPort && a.containerIp === b.containerIp && a.appPort === b.appPort;
}

/**
 * `range` is the container range configured now: a record from before a
 * change of range could not be masqueraded or fenced, so it is discarded.
 */
export function planRecovery(records: readonly NetworkRecord[], live: LiveNetwork, range: Cidr): RecoveryPlan {
  const adopt: NetworkRecord[] = [];
  const discard: NetworkRecord[] = [];
  const ports = new Set<number>();
  const slots = new Set<number>();
  for (const r of [...records].sort((a, b) => a.containerId.localeCompare(b.containerId))) {
    const alive = live.links.has(r.hostIfname) && live.netns.has(basename(r.netnsPath)) && cidrContains(range, ipv4ToNumber(r.containerIp));
    // Two records can only claim one port or slot after a hand edit; keep the first.
    if (alive && !ports.has(r.hostPort) && !slots.has(r.slot)) {
      adopt.push(r);
      ports.add(r.hostPort);
      slots.add(r.slot);
    } else {
      discard.push(r);
    }
  }
  const keptLinks = new Set(adopt.map((r) => r.hostIfname));
  const keptNetns = new Set(adopt.map((r) => basename(r.netnsPath)));
  return {
    adopt,
    discard,
    orphanLinks: [...live.links].filter((l) => !keptLinks.has(l)),
    orphanNetns: [...live.netns].filter((n) => !keptNetns.has(n)),
    orphanPorts: live.ports.filter((p) => !adopt.some((r) => samePort(p, r))),
  };
}
