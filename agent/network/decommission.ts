/**
 * @module Removes everything a cell's networking put on the host, found by
 * the cell's names and directories alone (no addresses or ports needed, so
 * `agent/main.ts teardown` can run it without the agent's configuration):
 * every host veth end with the cell's prefix and every namespace file in its
 * run dir (recorded or not), the nft table, the run dir's own bind mount
 * (netnsShareDir), the records, and ip_forward when Berth turned it on and no
 * other Berth table is left. Idempotent.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { native } from "../native/index";
import type { NetworkConfig } from "./config";
import { berthTables, hostLinks, netnsFiles, setIpForwarding } from "./host";
import { deleteTableScript, vethPrefix } from "./nft-rules";
import { RecordStore } from "./records";

export type CellNetworkNames = Pick<NetworkConfig, "cellName" | "ifTag" | "runDir" | "stateDir">;

const missing = (err: unknown) => ["ENOENT", "EINVAL"].includes((err as { code?: string }).code ?? "");

export async function decommissionNetwork(cell: CellNetworkNames): Promise<void> {
  const links = await hostLinks(vethPrefix(cell));
  const netns = await netnsFiles(cell.runDir).catch((err: unknown) => {
    if (missing(err)) return [];
    throw err;
  });
  await Promise.all([
    ...links.map((hostIfname) => native.netTeardown({ hostIfname })),
    ...netns.map((name) => native.netTeardown({ netnsPath: join(cell.runDir, name) })),
  ]);
  await native.nftRun(deleteTableScript(cell));
  const records = new RecordStore(cell.stateDir);
  const host = await records.readHost();
  if (host?.forwardingEnabledByBerth && (await berthTables()).length === 0) await setIpForwarding(false);
  // The run dir was bound onto itself to be a shared mount; a restart never stacks a second one.
  try {
    native.fsUnmount(cell.runDir, false);
  } catch (err) {
    if (!missing(err)) throw err;
  }
  await rm(cell.runDir, { recursive: true, force: true });
  await rm(cell.stateDir, { recursive: true, force: true });
}
