/**
 * @module When a heartbeat lists the cell's instances. A steady cell's beat
 * only renews its presence and resources; the list goes along when it differs
 * from the last one the control plane took (an instance came, went, or changed
 * state or port: the report sent at once may have been lost) and at least every
 * bulk-sync interval, which also refreshes usage (Diego's rep syncs its
 * containers with the BBS every 30 s). Usage moves every beat and is no change.
 */
import type { InstanceReport } from "../../shared/protocol/instance";

/** Diego's rep bulk-sync interval. */
export const DEFAULT_BULK_SYNC_MS = 30_000;

/** The last list the control plane took: what it said (`listKey`) and when its beat was sent. */
export interface ListedBeat {
  key: string;
  at: number;
}

/** What lists are compared by: each instance's guid, state, host port and crash count, in guid order. */
export function listKey(reports: readonly InstanceReport[]): string {
  const entries = reports.map((r) => [r.instance_guid, r.state, r.host_port, r.crash_count] as const);
  return JSON.stringify(entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

/** Whether the beat sent at `now` lists the instances `key` describes (`last`: null before the control plane took any). */
export function listDue(last: ListedBeat | null, key: string, now: number, bulkSyncMs: number): boolean {
  // A clock stepped back (NTP) counts as due: the interval cannot be told then.
  return last === null || last.key !== key || now - last.at >= bulkSyncMs || now < last.at;
}
