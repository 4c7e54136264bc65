/**
 * @module Where a registry fetch may go (pure): a registry host, a redirect's
 * Location or a token realm names a URL the user controls, so a hostile image
 * reference or registry could aim the Worker or a cell at loopback, the
 * cloud's metadata service (169.254.169.254) or the private network. A URL
 * whose host is such an address (or `localhost`) is refused unless the admin
 * listed it in the registry access (insecure or cell-only registries); a
 * redirect from https to http is refused always. Host names are not resolved
 * here; a cell also checks the addresses a name resolves to
 * (agent/images/registry-fetch.ts).
 *
 * @example
 * refusedTarget(new URL("http://169.254.169.254/latest"), { listed: [] }) // "… link-local …"
 * refusedTarget(new URL("http://10.0.0.5:5000/v2/"), { listed: ["10.0.0.0/8"] }) // null
 */
import { parseIp, registryListed } from "./allow-list";

/** The admin's entries that may name inward hosts: every registry they listed. */
export const listedRegistries = (access: { readonly insecure_registries: readonly string[]; readonly cell_only_registries: readonly string[] }): string[] =>
  [...access.insecure_registries, ...access.cell_only_registries];

/** Ranges no registry fetch reaches unless listed, with the words a message uses for them. */
const INWARD_V4: readonly [string, string][] = [
  ["0.0.0.0/8", "this-host"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "carrier-private"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["172.16.0.0/12", "private"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "benchmarking"],
  ["224.0.0.0/3", "multicast or reserved"],
];
const INWARD_V6: readonly [string, string][] = [
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["fe80::/10", "link-local"],
  ["fc00::/7", "private"],
  ["ff00::/8", "multicast"],
];

function inPrefix(ip: readonly number[], cidr: string): boolean {
  const [base = "", bitsText = ""] = cidr.split("/");
  const net = parseIp(base)!;
  const bits = Number(bitsText);
  return net.length === ip.length && net.every((b, i) => {
    const take = Math.max(0, Math.min(8, bits - i * 8));
    const mask = (0xff << (8 - take)) & 0xff;
    return (ip[i]! & mask) === (b & mask);
  });
}

/** The kind of inward address `ip` is (bytes, 4 or 16), or null for a public one. */
export function inwardAddressKind(ip: readonly number[]): string | null {
  if (ip.length === 16) {
    // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) addresses reach the IPv4 address inside.
    if (inPrefix(ip, "::ffff:0:0/96") || inPrefix(ip, "64:ff9b::/96")) return inwardAddressKind(ip.slice(12));
    return INWARD_V6.find(([cidr]) => inPrefix(ip, cidr))?.[1] ?? null;
  }
  return INWARD_V4.find(([cidr]) => inPrefix(ip, cidr))?.[1] ?? null;
}

/** For a URL's hostname (IPv6 in brackets, maybe a trailing dot): the inward kind, or null for a public address or a name. */
export function inwardHostKind(hostname: string): string | null {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
  // RFC 6761: localhost and its subdomains are loopback without asking DNS.
  if (host === "localhost" || host.endsWith(".localhost")) return "loopback";
  const ip = parseIp(host);
  return ip ? inwardAddressKind(ip) : null;
}

/** `host:port` with the scheme's default port spelled out, as the admin's entries are written. */
export function hostWithPort(url: URL): string {
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return `${url.hostname}:${port}`;
}

export interface TargetRules {
  /** The admin's listed registries (listedRegistries()). */
  listed: readonly string[];
  /** The URL this one was reached from (a redirect's source, a realm's registry). */
  from?: URL;
}

/** Why a fetch of `url` is refused, or null when it may go. */
export function refusedTarget(url: URL, rules: TargetRules): string | null {
  if (url.protocol !== "https:" && url.protocol !== "http:") return `${url.protocol} URLs are not fetched`;
  if (rules.from?.protocol === "https:" && url.protocol === "http:") return `it would downgrade from https to plain http (${url.host})`;
  const kind = inwardHostKind(url.hostname);
  if (kind && !registryListed(hostWithPort(url), rules.listed)) {
    return `${url.host} is a ${kind} address, which registries are not fetched from unless the admin lists them in the registry access`;
  }
  return null;
}
