/** When a heartbeat lists the cell's instances (agent/cell/heartbeat-list.ts): pure decisions, the clock a parameter. */
import { describe, expect, it } from "vitest";
import { TakenList } from "../../agent/cell/heartbeat-list";
import type { InstanceReport } from "../../shared/protocol/instance";

const report = (guid: string, extra: Partial<InstanceReport> = {}): InstanceReport => ({
  instance_guid: guid, state: "RUNNING", since: 1, host_port: 61000, crash_count: 0, exit: null, reason: null, usage: null, ...extra,
});

describe("a heartbeat's list of instances", () => {
  const a = report("a");
  const b = report("b");
  const taken = (reports: InstanceReport[], at = 1_000) => {
    const t = new TakenList();
    t.listed(reports, at, t.mark());
    return t;
  };

  it("goes with the first beat, and at least every bulk-sync interval", () => {
    expect(new TakenList().due([], 0, 30_000)).toBe(true);
    expect(taken([a, b]).due([a, b], 6_000, 30_000)).toBe(false);
    expect(taken([a, b]).due([a, b], 30_999, 30_000)).toBe(false);
    expect(taken([a, b]).due([a, b], 31_000, 30_000)).toBe(true);
  });

  it("goes with any change the control plane has not taken: an instance come or gone, or its state, port or crash count", () => {
    expect(taken([a, b]).due([a], 6_000, 30_000)).toBe(true);
    expect(taken([a]).due([a, b], 6_000, 30_000)).toBe(true);
    expect(taken([a]).due([{ ...a, state: "CRASHED", host_port: null }], 6_000, 30_000)).toBe(true);
    expect(taken([a]).due([{ ...a, host_port: 61001 }], 6_000, 30_000)).toBe(true);
    expect(taken([a]).due([{ ...a, crash_count: 1 }], 6_000, 30_000)).toBe(true);
  });

  it("stays home for what the control plane has: the same instances in any order, new usage, or changes it took as reports", () => {
    expect(taken([a, b]).due([b, { ...a, usage: { cpu: 0.5, mem: 1, disk: 2 } }], 6_000, 30_000)).toBe(false);
    const t = taken([a]);
    const started = report("b", { state: "STARTING", host_port: null });
    t.sending()([started]);
    expect(t.due([a, started], 6_000, 30_000)).toBe(false);
    // A report that did not get through changes nothing taken.
    t.sending()(null);
    expect(t.due([a, { ...started, state: "RUNNING", host_port: 61001 }], 6_000, 30_000)).toBe(true);
  });

  it("goes again after a list that crossed a report (either may have landed last), or when the control plane asks", () => {
    const running = report("b", { state: "RUNNING" });
    // A report in flight while the list is read.
    let t = taken([a]);
    const inFlight = t.sending();
    const mark = t.mark();
    inFlight([running]);
    t.listed([a, report("b", { state: "STARTING" })], 5_000, mark);
    expect(t.due([a, running], 6_000, 30_000)).toBe(true);
    // A report sent after the list was read, answered before or after it: the same.
    t = taken([a]);
    const read = t.mark();
    const after = t.sending();
    t.listed([a, report("b", { state: "STARTING" })], 5_000, read);
    after([running]);
    expect(t.due([a, running], 6_000, 30_000)).toBe(true);
    // Nothing crossed it: it holds.
    t = taken([a, running]);
    expect(t.due([a, running], 6_000, 30_000)).toBe(false);
    t.forget();
    expect(t.due([a, running], 6_000, 30_000)).toBe(true);
  });

  it("waits while a report is in flight, so the two never reach the control plane together", () => {
    const t = taken([a]);
    const answered = t.sending();
    const crashed = { ...a, state: "CRASHED" as const, host_port: null, crash_count: 1 };
    expect(t.due([crashed], 60_000, 30_000)).toBe(false);
    answered(null);
    expect(t.due([crashed], 60_000, 30_000)).toBe(true);
  });

  it("goes along when the clock stepped back, since the interval cannot be told", () => {
    expect(taken([a], 10_000).due([a], 9_000, 30_000)).toBe(true);
  });
});
