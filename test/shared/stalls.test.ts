import { describe, expect, it } from "vitest";
import { DEFAULT_CONVERGENCE_CONFIG } from "../../shared/convergence/config";
import { converge } from "../../shared/convergence/converge";
import { claimLookAt, nextDueAt } from "../../shared/convergence/next-due";
import { cellIsAlive } from "../../shared/convergence/cells";
import { recordStall, stallOf, stalledWithin, type Stall } from "../../shared/convergence/stalls";
import type { ActualInstance, CellView, DesiredState } from "../../shared/convergence/model";

const NOW = 1_000_000_000;
const C = DEFAULT_CONVERGENCE_CONFIG;

const cell = (guid: string, silentMs: number): CellView => ({
  guid, zone: "z1", state: "ACTIVE", last_heartbeat_at: NOW - silentMs, registered_at: NOW - 3_600_000,
  capacity: { memory_mb: 8192, disk_mb: 16384, containers: 50 }, cached_layers: [],
});
const desired: DesiredState = {
  diego_docker: true,
  processes: [{ process_guid: "p1", app_guid: "a1", version: "v1", instances: 1, memory_mb: 256, disk_mb: 512, lifecycle: "docker", layers: [] }],
};
const running: ActualInstance = {
  instance_guid: "i0", process_guid: "p1", index: 0, process_version: "v1", cell_guid: "c1", state: "RUNNING", presence: "ORDINARY", since: NOW - 600_000, crash_count: 0,
};

describe("stalls: measuring the control plane's own lag", () => {
  it("counts only what exceeds the slack", () => {
    expect(stallOf(NOW, NOW + 1_000, 1_000)).toBeNull();
    expect(stallOf(NOW, NOW + 5_000, 1_000)).toEqual({ from: NOW + 1_000, to: NOW + 5_000 });
  });

  it("sums the part of a window the stalls cover, overlapping stalls once", () => {
    const stalls: Stall[] = [{ from: 10, to: 20 }, { from: 15, to: 30 }, { from: 50, to: 60 }, { from: 100, to: 200 }];
    expect(stalledWithin(stalls, 0, 1_000)).toBe(20 + 10 + 100);
    expect(stalledWithin(stalls, 25, 55)).toBe(5 + 5);
    expect(stalledWithin([], 0, 1_000)).toBe(0);
  });

  it("forgets stalls older than the horizon and keeps the new one", () => {
    const kept = recordStall([{ from: 0, to: 10 }, { from: 90, to: 95 }], { from: 99, to: 100 }, 100, 20);
    expect(kept).toEqual([{ from: 90, to: 95 }, { from: 99, to: 100 }]);
  });

  it("merges overlapping stalls, so many heartbeats reporting one congestion keep one entry", () => {
    let stalls: Stall[] = [];
    for (let i = 0; i < 100; i++) stalls = recordStall(stalls, { from: 1_000 + i * 10, to: 1_500 + i * 10 }, 3_000, 10_000);
    stalls = recordStall(stalls, { from: 2_600, to: 2_700 }, 3_000, 10_000);
    expect(stalls).toEqual([{ from: 1_000, to: 2_490 }, { from: 2_600, to: 2_700 }]);
  });
});

describe("converge with the control plane's stalls", () => {
  const other = cell("c2", 1_000);

  it("keeps a cell whose silence is mostly the control plane's stall: not LOST, nothing replaced", () => {
    // 20 s since the last heartbeat, 6 s of which the control plane was stalled: 14 s of silence < the 15 s TTL.
    const stalls: Stall[] = [{ from: NOW - 12_000, to: NOW - 6_000 }];
    const plan = converge(desired, [running], [cell("c1", 20_000), other], NOW, C, { stalls, lastLostAt: null });
    expect(plan.markLost).toEqual([]);
    expect(plan.replace).toEqual([]);
    expect(cellIsAlive(cell("c1", 20_000), NOW, C, stalls)).toBe(true);
  });

  it("still marks LOST a cell silent longer than the TTL beyond the stalls, and replaces its instances", () => {
    const stalls: Stall[] = [{ from: NOW - 12_000, to: NOW - 8_000 }];
    const plan = converge(desired, [running], [cell("c1", 20_000), other], NOW, C, { stalls, lastLostAt: null });
    expect(plan.markLost.map((m) => m.cell_guid)).toEqual(["c1"]);
    expect(plan.replace.map((r) => [r.instance_guid, r.keep])).toEqual([["i0", "SUSPECT"]]);
  });

  it("ignores stalls from before the cell's last heartbeat", () => {
    const stalls: Stall[] = [{ from: NOW - 60_000, to: NOW - 21_000 }];
    expect(converge(desired, [running], [cell("c1", 20_000), other], NOW, C, { stalls, lastLostAt: null }).markLost.map((m) => m.cell_guid)).toEqual(["c1"]);
  });

  it("sets the next look at a cell's expiry later by the stalls since its heartbeat", () => {
    const stalls: Stall[] = [{ from: NOW - 4_000, to: NOW - 1_000 }];
    expect(nextDueAt([], [cell("c1", 5_000)], NOW, C)).toBe(NOW - 5_000 + 15_001);
    expect(nextDueAt([], [cell("c1", 5_000)], NOW, C, { stalls, lastLostAt: null })).toBe(NOW - 5_000 + 15_001 + 3_000);
  });
});

describe("claimLookAt: the alarm for an unacknowledged claim", () => {
  it("is the claim's timeout, then the retry interval while it waits for its cell's next heartbeat, never a past moment", () => {
    expect(claimLookAt(null, NOW, C)).toBeNull();
    expect(claimLookAt(NOW - 10_000, NOW, C)).toBe(NOW + 20_001);
    expect(claimLookAt(NOW - 40_000, NOW, C)).toBe(NOW + C.unplacedRetryMs);
  });
});

describe("converge: the LOST rate limit", () => {
  const twoSilent = [cell("c1", 30_000), cell("c2", 20_000), cell("c3", 1_000), cell("c4", 1_000), cell("c5", 1_000)];
  const onBoth: ActualInstance[] = [running, { ...running, instance_guid: "i1", index: 1, cell_guid: "c2" }];
  const two: DesiredState = { ...desired, processes: [{ ...desired.processes[0]!, instances: 2 }] };

  it("marks one cell LOST per interval, the longest silent first; the other's instances stay until its turn", () => {
    const plan = converge(two, onBoth, twoSilent, NOW, C, { stalls: [], lastLostAt: null });
    expect(plan.markLost.map((m) => m.cell_guid)).toEqual(["c1"]);
    expect(plan.replace.map((r) => r.instance_guid)).toEqual(["i0"]);
    // c1 is LOST now; c2 waits out the interval since that mark.
    const after = twoSilent.map((c) => (c.guid === "c1" ? { ...c, state: "LOST" as const } : c));
    const left = [onBoth[1]!];
    expect(converge(two, left, after, NOW + 9_999, C, { stalls: [], lastLostAt: NOW })).toMatchObject({ markLost: [], replace: [] });
    expect(nextDueAt([], after, NOW + 9_999, C, { stalls: [], lastLostAt: NOW })).toBe(NOW + 10_000);
    const turn = converge(two, left, after, NOW + 10_000, C, { stalls: [], lastLostAt: NOW });
    expect(turn.markLost.map((m) => m.cell_guid)).toEqual(["c2"]);
    expect(turn.replace.map((r) => r.instance_guid)).toEqual(["i1"]);
  });
});
