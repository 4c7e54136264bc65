/**
 * @module Which peers may speak for the client: the load balancers in front
 * of the router, given as CIDRs or single addresses. Only their
 * X-Forwarded-* headers are believed (headers.ts); anyone else could claim
 * any client address or scheme. Matching is Node's net.BlockList, which
 * compares addresses as numbers rather than as strings.
 */
import net from "node:net";

/** Whether `address` (unmapped, as clientAddress() gives it) is a trusted proxy. */
export type ProxyTrust = (address: string) => boolean;

/** The matcher for `entries` (already validated as CIDRs or addresses by the config schema). */
export function proxyTrust(entries: readonly string[]): ProxyTrust {
  if (entries.length === 0) return () => false;
  const list = new net.BlockList();
  for (const entry of entries) {
    const slash = entry.indexOf("/");
    const address = slash === -1 ? entry : entry.slice(0, slash);
    const type = net.isIPv6(address) ? "ipv6" : "ipv4";
    if (slash === -1) list.addAddress(address, type);
    else list.addSubnet(address, Number(entry.slice(slash + 1)), type);
  }
  return (address) => {
    const family = net.isIP(address);
    return family !== 0 && list.check(address, family === 6 ? "ipv6" : "ipv4");
  };
}
