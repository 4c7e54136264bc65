/**
 * @module IPv4 arithmetic for the container range: addresses as unsigned
 * 32-bit numbers, CIDRs as base + prefix, and the /30 each container gets
 * (host end .1, container .2 of its block), as Garden's kawasaki does.
 */
import { isIPv4 } from "node:net";

export interface Cidr {
  /** Network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

/** Each container owns one /30: network, host end, container end, broadcast. */
export const SLOT_PREFIX = 30;
const SLOT_SIZE = 4;

/** Dotted quad → unsigned 32-bit number; throws on anything else. */
export function ipv4ToNumber(text: string): number {
  if (!isIPv4(text)) throw new TypeError(`not an IPv4 address: ${JSON.stringify(text)}`);
  return text.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** "10.255.0.0/22" → {base, prefix}; the address must be the network address. */
export function parseCidr(text: string): Cidr {
  const match = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  const prefix = Number(match?.[2]);
  if (!match || prefix > 32) throw new TypeError(`not an IPv4 CIDR: ${JSON.stringify(text)}`);
  const base = ipv4ToNumber(match[1]!);
  if ((base & ~maskOf(prefix)) >>> 0 !== 0) throw new TypeError(`${text} has host bits set`);
  return { base, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${numberToIpv4(cidr.base)}/${cidr.prefix}`;
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function cidrContains(cidr: Cidr, address: number): boolean {
  return ((address & maskOf(cidr.prefix)) >>> 0) === cidr.base;
}

/** True when the two ranges share any address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.prefix <= b.prefix ? cidrContains(a, b.base) : cidrContains(b, a.base);
}

/** How many /30 blocks the range holds. */
export function slotCount(cidr: Cidr): number {
  return cidr.prefix > SLOT_PREFIX ? 0 : 2 ** (SLOT_PREFIX - cidr.prefix);
}

/** Host-end and container-end addresses of block `slot` of the range. */
export function slotAddresses(cidr: Cidr, slot: number): { hostIp: string; containerIp: string } {
  if (!Number.isInteger(slot) || slot < 0 || slot >= slotCount(cidr)) throw new RangeError(`slot ${slot} is outside ${formatCidr(cidr)}`);
  const block = cidr.base + slot * SLOT_SIZE;
  return { hostIp: numberToIpv4(block + 1), containerIp: numberToIpv4(block + 2) };
}
