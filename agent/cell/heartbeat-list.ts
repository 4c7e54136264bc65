/**
 * @module When a heartbeat lists the cell's instances. A steady cell's beat
 * only renews its presence and resources; the list goes along when it differs
 * from what the control plane has taken (the last list, and the reports it
 * took since: an instance came, went, or changed state or port, and its report
 * did not get through), when the control plane asks for it, and at least every
 * bulk-sync interval, which also refreshes usage (Diego's rep syncs its
 * containers with the BBS every 30 s). Usage moves every beat and is no change.
 */
import type { InstanceReport } from "../../shared/protocol/instance";

/** Diego's rep bulk-sync interval. */
export const DEFAULT_BULK_SYNC_MS = 30_000;

/** What an instance's entry is compared by: its state, host port and crash count. */
const entryOf = (r: InstanceReport): string => `${r.state} ${r.host_port} ${r.crash_count}`;

/** A list read while a report was in flight: whichever of the two lands last wins, so it proves nothing. */
const CROSSED = -1;

/** What the control plane has taken of the cell's instances, and when it last took a whole list. */
export class TakenList {
  private entries = new Map<string, string>();
  private listedAt: number | null = null;
  /** Reports begun or answered so far, and those in flight. */
  private moves = 0;
  private inFlight = 0;

  /** Before a report is sent: answer the returned function with the reports once the control plane took them, or null. */
  sending(): (taken: readonly InstanceReport[] | null) => void {
    this.moves += 1;
    this.inFlight += 1;
    return (taken) => {
      this.moves += 1;
      this.inFlight -= 1;
      for (const r of taken ?? []) this.entries.set(r.instance_guid, entryOf(r));
    };
  }

  /** Taken when a beat reads its instances; `listed` tells by it whether a report crossed the beat. */
  mark(): number {
    return this.inFlight > 0 ? CROSSED : this.moves;
  }

  /**
   * The control plane took a beat listing `reports`, read at `mark` and sent at `at`. If a report crossed it, the
   * list's older state may have landed after the report's newer one: the next beat lists again.
   */
  listed(reports: readonly InstanceReport[], at: number, mark: number): void {
    if (mark === CROSSED || mark !== this.moves) {
      this.listedAt = null;
      return;
    }
    this.entries = new Map(reports.map((r) => [r.instance_guid, entryOf(r)]));
    this.listedAt = at;
  }

  /** The control plane asked for the list (it holds instances the cell may have stopped, or the cell came back). */
  forget(): void {
    this.listedAt = null;
  }

  /** Whether the beat sent at `now` lists `reports`: before any list was taken, on any difference, and once `bulkSyncMs` has passed. */
  due(reports: readonly InstanceReport[], now: number, bulkSyncMs: number): boolean {
    // Never beside a report in flight: both would reach the control plane at once and decide from the same row (a crash
    // recorded twice). The report is taken, or fails and leaves its change for a later beat to list.
    if (this.inFlight > 0) return false;
    // A clock stepped back (NTP) counts as due: the interval cannot be told then.
    if (this.listedAt === null || now - this.listedAt >= bulkSyncMs || now < this.listedAt) return true;
    return reports.length !== this.entries.size || reports.some((r) => this.entries.get(r.instance_guid) !== entryOf(r));
  }
}
