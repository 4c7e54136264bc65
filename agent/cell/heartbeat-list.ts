/**
 * @module When a heartbeat lists the cell's instances. A steady cell's beat
 * only renews its presence and resources; the list goes along when it differs
 * from what the control plane has taken (the last list, and the reports it
 * took since: an instance came, went, or changed state or port, and its report
 * did not get through) and at least every bulk-sync interval, which also
 * refreshes usage (Diego's rep syncs its containers with the BBS every 30 s).
 * Usage moves every beat and is no change.
 */
import type { InstanceReport } from "../../shared/protocol/instance";

/** Diego's rep bulk-sync interval. */
export const DEFAULT_BULK_SYNC_MS = 30_000;

/** What an instance's entry is compared by: its state, host port and crash count. */
const entryOf = (r: InstanceReport): string => `${r.state} ${r.host_port} ${r.crash_count}`;

/** What the control plane has taken of the cell's instances, and when it last took a whole list. */
export class TakenList {
  private entries = new Map<string, string>();
  private listedAt: number | null = null;

  /** The control plane took a beat listing `reports`, sent at `at`: that is what it holds now. */
  listed(reports: readonly InstanceReport[], at: number): void {
    this.entries = new Map(reports.map((r) => [r.instance_guid, entryOf(r)]));
    this.listedAt = at;
  }

  /** The control plane took these reports (sent at once, between beats). */
  reported(reports: readonly InstanceReport[]): void {
    for (const r of reports) this.entries.set(r.instance_guid, entryOf(r));
  }

  /** Whether the beat sent at `now` lists `reports`: before any list was taken, on any difference, and once `bulkSyncMs` has passed. */
  due(reports: readonly InstanceReport[], now: number, bulkSyncMs: number): boolean {
    // A clock stepped back (NTP) counts as due: the interval cannot be told then.
    if (this.listedAt === null || now - this.listedAt >= bulkSyncMs || now < this.listedAt) return true;
    return reports.length !== this.entries.size || reports.some((r) => this.entries.get(r.instance_guid) !== entryOf(r));
  }
}
