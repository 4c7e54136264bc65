/**
 * @module What one instance report from a cell does to the instance's row —
 * a pure decision, so repeats and stale reports are easy to see as no-ops.
 *
 * - A report for an instance placed on another cell, or for one the control
 *   plane does not know, is rejected — except STOPPED or CRASHED for an unknown
 *   instance: its row is already gone (stopped, or replaced after the crash),
 *   so the repeat changes nothing.
 * - STOPPED of a STOPPING instance: the row goes.
 * - CRASHED (or an unasked STOPPED) of a starting or running instance: the
 *   crash count moves per Diego's calculator, the row becomes CRASHED, and
 *   convergence decides when it restarts. A SUSPECT/EVACUATING copy that dies
 *   just goes: its replacement exists already.
 * - STARTING / RUNNING move a placed instance forward; the same state again only
 *   refreshes a host port that moved (usage goes on the cell's row, reports.ts).
 *   Running wakes a pass only when one waits for it (`awaited`).
 * - Anything for a CRASHED or STOPPING row is stale and ignored.
 */
import type { RestartPolicy } from "../../shared/convergence/config";
import { crashCountAfterCrash } from "../../shared/convergence/restart-calculator";
import { isStarted, type ActualState, type Presence } from "../../shared/convergence/model";
import type { InstanceReport } from "../../shared/protocol/instance";

export interface InstanceRow {
  instanceGuid: string;
  cellGuid: string | null;
  state: ActualState;
  presence: Presence;
  since: number;
  crashCount: number;
  hostPort: number | null;
  /**
   * A pass acts once this instance runs: another copy of its index exists (a
   * SUSPECT or EVACUATING one its running retires, or a duplicate), or its app
   * is deploying (a rolling step waits for it). Else its running changes no
   * decision and wakes no pass.
   */
  awaited: boolean;
}

export interface RowChange {
  state?: ActualState;
  since?: number;
  hostPort?: number | null;
  crashCount?: number;
  crashReason?: string | null;
}

export interface CrashFacts {
  crash_count: number;
  exit_status: number | null;
  exit_signal: string | null;
  oom: boolean;
  reason: string;
}

export type ReportDecision =
  | { kind: "reject"; reason: string }
  | { kind: "ignore" }
  | { kind: "delete"; wasRoutable: boolean; leftSet: boolean }
  | {
      kind: "update";
      change: RowChange;
      /** Routers must learn about it (became or stopped being RUNNING, or moved port). */
      routesChanged: boolean;
      /** Convergence must look (a crash, or an awaited instance became RUNNING). */
      converge: boolean;
      /** The instance left the cell's desired set (it crashed). */
      leftSet: boolean;
      crash?: CrashFacts;
    };


function describeExit(report: InstanceReport): string {
  if (report.reason) return report.reason;
  if (report.exit?.oom) return "out of memory";
  if (report.exit?.signal) return `killed by ${report.exit.signal}`;
  if (report.exit?.status !== null && report.exit?.status !== undefined) return `exited with status ${report.exit.status}`;
  return report.state === "STOPPED" ? "stopped unexpectedly" : "crashed";
}

function crash(row: InstanceRow, report: InstanceReport, now: number, policy: RestartPolicy): ReportDecision {
  if (row.presence !== "ORDINARY") return { kind: "delete", wasRoutable: row.state === "RUNNING", leftSet: true };
  const crashCount = crashCountAfterCrash({ crash_count: row.crashCount, state: row.state, since: row.since }, now, policy);
  const reason = describeExit(report);
  return {
    kind: "update",
    change: { state: "CRASHED", since: now, hostPort: null, crashCount, crashReason: reason },
    routesChanged: row.state === "RUNNING",
    converge: true,
    leftSet: true,
    crash: {
      crash_count: crashCount,
      exit_status: report.exit?.status ?? null,
      exit_signal: report.exit?.signal ?? null,
      oom: report.exit?.oom ?? false,
      reason,
    },
  };
}

export function decideReport(
  row: InstanceRow | undefined,
  cellGuid: string,
  report: InstanceReport,
  now: number,
  policy: RestartPolicy,
): ReportDecision {
  if (!row) {
    const final = report.state === "STOPPED" || report.state === "CRASHED";
    return final ? { kind: "ignore" } : { kind: "reject", reason: `instance ${report.instance_guid} is not placed on this cell` };
  }
  if (row.cellGuid !== cellGuid) return { kind: "reject", reason: `instance ${report.instance_guid} is not placed on this cell` };
  if (row.state === "STOPPING") {
    return report.state === "STOPPED" || report.state === "CRASHED" ? { kind: "delete", wasRoutable: false, leftSet: false } : { kind: "ignore" };
  }
  if (!isStarted(row.state)) return { kind: "ignore" };

  switch (report.state) {
    case "STOPPED":
    case "CRASHED":
      return crash(row, report, now, policy);
    case "STARTING":
    case "RUNNING": {
      const stateChanged = row.state !== report.state;
      const portChanged = row.hostPort !== report.host_port;
      if (!stateChanged && !portChanged) return { kind: "ignore" };
      return {
        kind: "update",
        change: {
          ...(stateChanged ? { state: report.state, since: now } : {}),
          hostPort: report.host_port,
        },
        routesChanged: (stateChanged && (row.state === "RUNNING" || report.state === "RUNNING")) || (portChanged && report.state === "RUNNING"),
        converge: stateChanged && report.state === "RUNNING" && row.awaited,
        leftSet: false,
      };
    }
  }
}
