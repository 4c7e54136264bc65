/**
 * @module The network manager's configuration, validated once so every name,
 * address and port that later reaches nft or netlink is known to be safe.
 */
import { isAbsolute } from "node:path";
import { isIPv4 } from "node:net";
import { z } from "zod";
import { cidrContains, cidrsOverlap, ipv4ToNumber, parseCidr, slotCount, type Cidr } from "./ipv4";

function safeCidr(text: string): Cidr | undefined {
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

const ipv4 = z.string().refine((s) => isIPv4(s), "must be an IPv4 address");
const cidr = z.string().refine((s) => safeCidr(s) !== undefined, "must be an IPv4 CIDR without host bits");
const absolutePath = z.string().refine((s) => isAbsolute(s) && !s.includes("\0"), "must be an absolute path");
const port = z.number().int().min(1024).max(65535);
/** The largest container range: 16 384 containers' /30s. */
const MIN_CONTAINER_PREFIX = 16;

export const networkConfigSchema = z
  .strictObject({
    /** Names the nft table `berth_<cellName>`, so several agents never share rules. */
    cellName: z.string().regex(/^[a-z0-9_]{1,24}$/, "must be 1-24 of a-z, 0-9, _"),
    /** Host veth ends are `brt<ifTag>-<slot>`; one tag per agent on a host. */
    ifTag: z.string().regex(/^[a-z0-9]{1,4}$/, "must be 1-4 of a-z, 0-9"),
    /** Cell-local range cut into one /30 per container. */
    containerCidr: cidr,
    /** The address the app ports are published on: a real interface address of the cell, never loopback. */
    cellAddress: ipv4,
    hostPorts: z.strictObject({ min: port, max: port }).refine((r) => r.min <= r.max, "min must not exceed max"),
    /** Named network namespace files live here (like /run/netns). */
    runDir: absolutePath,
    /** Per-container records, so ports and addresses survive an agent restart. */
    stateDir: absolutePath,
    /** Further ranges containers may not reach (a control plane or registry off the host); wins over allowNetworks. */
    denyNetworks: z.array(cidr).default([]),
    /**
     * Private ranges containers may reach after all (a database on the cell's
     * network), like a Cloud Foundry security group; public addresses are open
     * without it. Never the container range or the cell's own addresses.
     */
    allowNetworks: z.array(cidr).default([]),
    /**
     * Namespaces kept prepared (veth, addresses, route; no port yet), so a
     * start only records and publishes its port. 0 turns it off.
     */
    poolSize: z.number().int().min(0).max(64).default(0),
    fallbackNameservers: z.array(ipv4).min(1).default(["1.1.1.1", "8.8.8.8"]),
    hostResolvConf: absolutePath.default("/etc/resolv.conf"),
  })
  .superRefine((c, ctx) => {
    const range = safeCidr(c.containerCidr);
    if (range && slotCount(range) === 0) ctx.addIssue({ code: "custom", path: ["containerCidr"], message: "must be /30 or larger" });
    // Every /30 is an element of the anti-spoofing set (nft-rules.ts).
    if (range && range.prefix < MIN_CONTAINER_PREFIX) ctx.addIssue({ code: "custom", path: ["containerCidr"], message: `must be /${MIN_CONTAINER_PREFIX} or smaller` });
    c.allowNetworks.forEach((net, i) => {
      const allowed = safeCidr(net);
      if (range && allowed && cidrsOverlap(range, allowed)) ctx.addIssue({ code: "custom", path: ["allowNetworks", i], message: "must not overlap containerCidr (containers never reach each other)" });
    });
    if (!isIPv4(c.cellAddress)) return;
    const cell = ipv4ToNumber(c.cellAddress);
    const loopback = parseCidr("127.0.0.0/8");
    if (cidrContains(loopback, cell) || cell === 0) {
      ctx.addIssue({ code: "custom", path: ["cellAddress"], message: "must not be loopback or 0.0.0.0 (publishing there needs route_localnet)" });
    }
    if (range && cidrContains(range, cell)) ctx.addIssue({ code: "custom", path: ["cellAddress"], message: "must be outside containerCidr" });
    if (range && cidrsOverlap(range, loopback)) ctx.addIssue({ code: "custom", path: ["containerCidr"], message: "must not overlap loopback" });
  });

export type NetworkConfigInput = z.input<typeof networkConfigSchema>;
export type NetworkConfig = z.output<typeof networkConfigSchema>;

export class NetworkConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`network config: ${field} ${message}`);
    this.name = "NetworkConfigError";
  }
}

/** Validates and fills defaults; throws NetworkConfigError naming the first bad field. */
export function parseNetworkConfig(input: unknown): NetworkConfig {
  const result = networkConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new NetworkConfigError(issue.path.join(".") || "(root)", issue.message);
}
