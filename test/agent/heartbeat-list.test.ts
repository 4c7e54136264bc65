/** When a heartbeat lists the cell's instances (agent/cell/heartbeat-list.ts): pure decisions, the clock a parameter. */
import { describe, expect, it } from "vitest";
import { listDue, listKey } from "../../agent/cell/heartbeat-list";
import type { InstanceReport } from "../../shared/protocol/instance";

const report = (guid: string, extra: Partial<InstanceReport> = {}): InstanceReport => ({
  instance_guid: guid, state: "RUNNING", since: 1, host_port: 61000, crash_count: 0, exit: null, reason: null, usage: null, ...extra,
});

describe("a heartbeat's list of instances", () => {
  const a = report("a");
  const b = report("b");

  it("is compared by each instance's guid, state, port and crash count, whatever the order and the usage", () => {
    expect(listKey([a, b])).toBe(listKey([b, { ...a, usage: { cpu: 0.5, mem: 1, disk: 2 } }]));
    expect(listKey([a, b])).not.toBe(listKey([a]));
    expect(listKey([a])).not.toBe(listKey([{ ...a, state: "CRASHED", host_port: null }]));
    expect(listKey([a])).not.toBe(listKey([{ ...a, host_port: 61001 }]));
    expect(listKey([a])).not.toBe(listKey([{ ...a, crash_count: 1 }]));
  });

  it("goes with the first beat, with any change, and at least every bulk-sync interval", () => {
    const key = listKey([a, b]);
    expect(listDue(null, listKey([]), 0, 30_000)).toBe(true);
    expect(listDue({ key, at: 1_000 }, key, 6_000, 30_000)).toBe(false);
    expect(listDue({ key, at: 1_000 }, listKey([a]), 6_000, 30_000)).toBe(true);
    expect(listDue({ key, at: 1_000 }, key, 30_999, 30_000)).toBe(false);
    expect(listDue({ key, at: 1_000 }, key, 31_000, 30_000)).toBe(true);
  });

  it("goes along when the clock stepped back, since the interval cannot be told", () => {
    const key = listKey([a]);
    expect(listDue({ key, at: 10_000 }, key, 9_000, 30_000)).toBe(true);
  });
});
