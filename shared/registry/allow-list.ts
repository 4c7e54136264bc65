/**
 * @module Matching a registry host against the admin's lists (insecure
 * registries, cell-only registries): entries are a host name, an IP, either
 * with `:port`, or a CIDR. A host name matches case-insensitively; an entry
 * without a port matches every port; a CIDR matches registry hosts written as
 * IP literals (host names are not resolved here: that would need DNS, and the
 * answer could change between staging and pulling).
 *
 * @example
 * registryListed("10.1.2.3:5000", ["10.0.0.0/8"]) // true
 * registryListed("reg.local:5000", ["reg.local:5001"]) // false
 */

interface HostPort { host: string; port?: number }

function splitHostPort(s: string): HostPort {
  const v = s.trim().toLowerCase();
  if (v.startsWith("[")) {
    const end = v.indexOf("]");
    const host = v.slice(1, end < 0 ? undefined : end);
    const port = end >= 0 && v[end + 1] === ":" ? Number(v.slice(end + 2)) : undefined;
    return port === undefined ? { host } : { host, port };
  }
  const colons = v.split(":").length - 1;
  if (colons === 1) {
    const [host = "", port = ""] = v.split(":");
    return { host, port: Number(port) };
  }
  return { host: v }; // a bare IPv6 address or a name
}

/** IPv4 or IPv6 text → bytes, or null for a name. */
export function parseIp(s: string): number[] | null {
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(s)) {
    const b = s.split(".").map(Number);
    return b.every((x) => x <= 255) ? b : null;
  }
  if (!s.includes(":") || !/^[0-9a-f:.]+$/i.test(s)) return null;
  let tail: number[] = [];
  let text = s;
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (v4) {
    const b = parseIp(v4[1]!);
    if (!b) return null;
    tail = b;
    text = s.slice(0, -v4[1]!.length) + "0:0";
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (h: string) => (h ? h.split(":") : []);
  const head = groups(halves[0]!);
  const back = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - back.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return null;
  const all = [...head, ...Array(missing).fill("0"), ...back];
  const bytes: number[] = [];
  for (const g of all) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return null;
    const n = parseInt(g, 16);
    bytes.push(n >> 8, n & 0xff);
  }
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

function inCidr(ip: number[], cidr: string): boolean {
  const [base = "", bitsText = ""] = cidr.split("/");
  const net = parseIp(base);
  const bits = Number(bitsText);
  if (!net || net.length !== ip.length || !Number.isInteger(bits) || bits < 0 || bits > ip.length * 8) return false;
  for (let i = 0; i < ip.length; i++) {
    const take = Math.max(0, Math.min(8, bits - i * 8));
    const mask = take === 0 ? 0 : (0xff << (8 - take)) & 0xff;
    if ((ip[i]! & mask) !== (net[i]! & mask)) return false;
  }
  return true;
}

/** True when `registryHost` (`host[:port]` as in an image reference) is named by an entry of `list`. */
export function registryListed(registryHost: string, list: readonly string[]): boolean {
  const target = splitHostPort(registryHost);
  const targetIp = parseIp(target.host);
  return list.some((raw) => {
    const entry = raw.trim().toLowerCase();
    if (!entry) return false;
    if (entry.includes("/")) return targetIp !== null && inCidr(targetIp, entry);
    const e = splitHostPort(entry);
    if (e.port !== undefined && e.port !== target.port) return false;
    const entryIp = parseIp(e.host);
    if (entryIp && targetIp) return entryIp.join(".") === targetIp.join(".");
    return e.host === target.host;
  });
}
