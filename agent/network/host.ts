/**
 * @module What the host has now, read without spawning anything: Berth's
 * host veth ends, namespace files in the run dir, the live
 * port map (libnftables, JSON) and the ip_forward switch.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { z } from "zod";
import { native } from "../native/index";
import type { NetworkConfig } from "./config";
import { listPortsScript, tableName, type PortMapping } from "./nft-rules";

const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";

/**
 * Interfaces of the agent's own network namespace whose names start with
 * `prefix`. Read from /proc/self/net/dev, which follows the reader's
 * namespace; /sys/class/net follows whoever mounted /sys, so it would list
 * the root namespace's links for an agent started with `nsenter --net`.
 */
export async function hostLinks(prefix: string): Promise<string[]> {
  const text = await readFile("/proc/self/net/dev", "utf8");
  return text
    .split("\n")
    .slice(2)
    .map((line) => line.split(":")[0]!.trim())
    .filter((name) => name.startsWith(prefix));
}

export async function netnsFiles(runDir: string): Promise<string[]> {
  return readdir(runDir);
}

const tablesSchema = z.object({
  nftables: z.array(z.object({ table: z.object({ family: z.string(), name: z.string() }).optional() }).passthrough()),
});

/** Names of the inet tables whose names start with `berth_` (this agent's and any other's). */
export async function berthTables(): Promise<string[]> {
  const parsed = tablesSchema.parse(JSON.parse(await native.nftRun("list tables", true)));
  return parsed.nftables.flatMap((o) => (o.table && o.table.family === "inet" && o.table.name.startsWith("berth_") ? [o.table.name] : []));
}

const mapSchema = z.object({
  nftables: z.array(
    z
      .object({
        map: z
          .object({
            elem: z.array(z.tuple([z.number(), z.object({ concat: z.tuple([z.string(), z.number()]) })])).optional(),
          })
          .passthrough()
          .optional(),
      })
      .passthrough(),
  ),
});

/** The port map as the kernel has it; empty when the table does not exist yet. */
export async function livePortMappings(config: NetworkConfig): Promise<PortMapping[]> {
  if (!(await berthTables()).includes(tableName(config))) return [];
  const parsed = mapSchema.parse(JSON.parse(await native.nftRun(listPortsScript(config), true)));
  return parsed.nftables.flatMap((o) =>
    (o.map?.elem ?? []).map(([hostPort, { concat }]) => ({ hostPort, containerIp: concat[0], appPort: concat[1] })),
  );
}

export async function ipForwarding(): Promise<boolean> {
  return (await readFile(IP_FORWARD, "utf8")).trim() === "1";
}

export async function setIpForwarding(on: boolean): Promise<void> {
  await writeFile(IP_FORWARD, on ? "1\n" : "0\n");
}
