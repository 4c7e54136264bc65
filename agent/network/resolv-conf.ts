/**
 * @module /etc/resolv.conf for containers. A loopback nameserver on the host
 * (systemd-resolved's 127.0.0.53, a local dnsmasq) is the container's own
 * loopback inside its namespace, and the host's other addresses are closed to
 * containers by the egress policy, so only the host's non-loopback IPv4
 * nameservers are kept, else the configured fallback. Other lines (search,
 * options) are kept as they are.
 */
import { isIPv4 } from "node:net";

const NAMESERVER = /^\s*nameserver\s+(\S+)/;

function usableFromContainer(address: string): boolean {
  return isIPv4(address) && !address.startsWith("127.") && address !== "0.0.0.0";
}

function parse(hostText: string, fallbackNameservers: readonly string[]): { kept: string[]; nameservers: readonly string[] } {
  const kept: string[] = [];
  const nameservers: string[] = [];
  for (const line of hostText.split("\n")) {
    const match = NAMESERVER.exec(line);
    if (!match) {
      if (line.trim() !== "") kept.push(line);
    } else if (usableFromContainer(match[1]!)) {
      nameservers.push(match[1]!);
    }
  }
  return { kept, nameservers: nameservers.length > 0 ? nameservers : fallbackNameservers };
}

/** The host's resolv.conf text → the text to bind-mount into a container. */
export function containerResolvConf(hostText: string, fallbackNameservers: readonly string[]): string {
  const { kept, nameservers } = parse(hostText, fallbackNameservers);
  return [...kept, ...nameservers.map((ns) => `nameserver ${ns}`)].join("\n") + "\n";
}

/** The nameservers containerResolvConf gives containers: the egress policy lets DNS reach them. */
export function containerNameservers(hostText: string, fallbackNameservers: readonly string[]): string[] {
  return [...parse(hostText, fallbackNameservers).nameservers];
}
