/**
 * @module Validating the admin's registry lists (docs/architecture.md, rule 3) before they
 * are stored: `insecure_registries` entries are `host:port`, an IP address (v4
 * or v6, any port) or a CIDR range; `cell_only_registries` entries are
 * `host:port`. Each entry comes back in one canonical spelling (lower-case
 * host, RFC 5952 IPv6, `[v6]:port`) so lists compare exactly. Matching a
 * registry against the lists is `registryListed` in shared/registry/allow-list.ts.
 *
 * As CF's `insecure_docker_registry_list`, a bare host name is refused: the
 * admin names the exact endpoint.
 */
import { parseIp } from "../registry/allow-list";

export type EntryResult = { ok: true; entry: string } | { ok: false; error: string };

const fail = (error: string): EntryResult => ({ ok: false, error });

/** Dotted-quad IPv4 without leading zeros (which some parsers read as octal), or IPv6 without a zone. */
function strictIp(s: string): number[] | null {
  if (/^[\d.]+$/.test(s) && !/^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/.test(s)) return null;
  return parseIp(s);
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
export function formatIp(bytes: readonly number[]): string {
  if (bytes.length === 4) return bytes.join(".");
  const g = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = Math.max(i, j - 1);
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  return best.at < 0 ? hex(g) : `${hex(g.slice(0, best.at))}::${hex(g.slice(best.at + best.len))}`;
}

/** A DNS name (RFC 1123 labels); a last label of digits would read as IPv4, so it is refused. */
function isHostName(s: string): boolean {
  const labels = s.split(".");
  return s.length <= 253 && !/^\d+$/.test(labels[labels.length - 1]!) && labels.every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l));
}

/** `host:port`, `IPv4:port` or `[IPv6]:port`. */
export function parseHostPort(raw: string): EntryResult {
  const m = /^(?:\[([^\]]+)\]|([^:/[\]]+)):([^:]*)$/.exec(raw);
  if (!m) return fail(`'${raw}' is not host:port`);
  if (!/^[1-9]\d{0,4}$/.test(m[3]!) || Number(m[3]) > 65535) return fail(`'${raw}' has an invalid port (1-65535)`);
  const port = Number(m[3]);
  if (m[1] !== undefined) {
    const ip = strictIp(m[1]);
    return ip?.length === 16 ? { ok: true, entry: `[${formatIp(ip)}]:${port}` } : fail(`'${raw}' has an invalid IPv6 address`);
  }
  const host = m[2]!.toLowerCase();
  const ip = strictIp(host);
  if (ip) return { ok: true, entry: `${formatIp(ip)}:${port}` };
  return isHostName(host) ? { ok: true, entry: `${host}:${port}` } : fail(`'${raw}' has an invalid host name`);
}

function parseCidr(raw: string): EntryResult {
  const [addr, bits, ...rest] = raw.split("/");
  const ip = rest.length === 0 ? strictIp(addr!) : null;
  if (!ip) return fail(`'${raw}' is not a CIDR range (address/prefix)`);
  const max = ip.length * 8;
  if (!/^(0|[1-9]\d{0,2})$/.test(bits!) || Number(bits) > max) return fail(`'${raw}' has an invalid prefix length (0-${max})`);
  const prefix = Number(bits);
  const network = ip.map((b, i) => b & (0xff << (8 - Math.max(0, Math.min(8, prefix - 8 * i)))) & 0xff);
  if (network.some((b, i) => b !== ip[i])) return fail(`'${raw}' has host bits set; did you mean ${formatIp(network)}/${prefix}?`);
  return { ok: true, entry: `${formatIp(ip)}/${prefix}` };
}

/** An `insecure_registries` entry: host:port, IP or CIDR. */
export function parseInsecureEntry(raw: string): EntryResult {
  if (raw.includes("://")) return fail(`'${raw}' must not have a scheme`);
  if (raw.includes("/")) return parseCidr(raw);
  const ip = strictIp(raw.startsWith("[") && raw.endsWith("]") ? raw.slice(1, -1) : raw);
  if (ip) return { ok: true, entry: formatIp(ip) };
  const hp = parseHostPort(raw);
  return hp.ok ? hp : fail(`${hp.error}; an entry is host:port, an IP address or a CIDR range`);
}

/** A `cell_only_registries` entry: host:port only. */
export function parseCellOnlyEntry(raw: string): EntryResult {
  if (raw.includes("://")) return fail(`'${raw}' must not have a scheme`);
  return parseHostPort(raw);
}
