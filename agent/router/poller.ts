/**
 * @module The long-poll loop: ask the source for the next table, hand each new
 * table to `onTable`, wait as {@link nextPollDelay} says, repeat until stopped.
 * A failure never clears the table the proxy has: it keeps serving the last one.
 */
import { setTimeout as sleepFor } from "node:timers/promises";
import type { Logger } from "pino";
import type { RouteTable } from "../../shared/protocol/route-table";
import { nextPollDelay, type PollSchedule } from "./poll-schedule";
import type { TableSource } from "./table-source";

export interface PollerOptions {
  readonly source: TableSource;
  readonly schedule: PollSchedule;
  readonly onTable: (table: RouteTable) => void;
  readonly log: Logger;
  readonly random?: () => number;
}

export interface Poller {
  /** Version of the last table received, undefined before the first. */
  readonly version: number | undefined;
  /** Consecutive failed polls (0 while the control plane answers). */
  readonly failures: number;
  /** Aborts the poll in flight and resolves when the loop has ended. */
  stop(): Promise<void>;
}

export function startPoller(options: PollerOptions): Poller {
  const random = options.random ?? Math.random;
  const abort = new AbortController();
  const state = { version: undefined as number | undefined, failures: 0 };

  async function loop(): Promise<void> {
    const { signal } = abort;
    while (!signal.aborted) {
      try {
        const table = await options.source(state.version, signal);
        if (signal.aborted) return;
        if (state.failures > 0) options.log.info({ after_failures: state.failures }, "route table source reachable again");
        state.failures = 0;
        if (table !== null) {
          state.version = table.version;
          options.onTable(table);
        }
      } catch (err) {
        if (signal.aborted) return;
        state.failures++;
        options.log.warn({ err, failures: state.failures, version: state.version }, "route table poll failed; serving the last table");
      }
      try {
        await sleepFor(nextPollDelay(state.failures, options.schedule, random), undefined, { signal });
      } catch (err) {
        if (signal.aborted) return; // stop() was called while waiting
        throw err;
      }
    }
  }

  const done = loop();
  return {
    get version() {
      return state.version;
    },
    get failures() {
      return state.failures;
    },
    async stop() {
      abort.abort();
      await done;
    },
  };
}
