import { describe, expect, it } from "vitest";
import { DEFAULT_CONVERGENCE_CONFIG } from "../../shared/convergence/config";
import { converge } from "../../shared/convergence/converge";
import { nextDueAt } from "../../shared/convergence/next-due";
import type { Stall } from "../../shared/convergence/stalls";
import type { ActualInstance, CellView, DesiredProcess, DesiredState } from "../../shared/convergence/model";

const NOW = 1_000_000_000;
const C = DEFAULT_CONVERGENCE_CONFIG;

const proc = (o: Partial<DesiredProcess> = {}): DesiredProcess => ({
  process_guid: "p1", app_guid: "a1", version: "v1", instances: 2, memory_mb: 256, disk_mb: 512, lifecycle: "docker", layers: [], ...o,
});
const desired = (processes: DesiredProcess[], diego_docker = true): DesiredState => ({ processes, diego_docker });
const inst = (o: Partial<ActualInstance> & { instance_guid: string }): ActualInstance => ({
  process_guid: "p1", index: 0, process_version: "v1", cell_guid: "c1", state: "RUNNING", presence: "ORDINARY", since: NOW - 60_000, crash_count: 0, ...o,
});
const cell = (o: Partial<CellView> & { guid: string }): CellView => ({
  zone: "z1", state: "ACTIVE", last_heartbeat_at: NOW - 1_000, registered_at: NOW - 3_600_000,
  capacity: { memory_mb: 8192, disk_mb: 16384, containers: 50 }, cached_layers: [], ...o,
});
const cells = [cell({ guid: "c1" }), cell({ guid: "c2", zone: "z2" })];

const ids = (xs: { instance_guid: string | null }[]) => xs.map((x) => x.instance_guid);

describe("converge: missing instances", () => {
  it("places every missing index of a desired process", () => {
    const plan = converge(desired([proc({ instances: 3 })]), [inst({ instance_guid: "i1", index: 1 })], cells, NOW);
    expect(plan.place.map((p) => [p.process_guid, p.index, p.instance_guid])).toEqual([["p1", 0, null], ["p1", 2, null]]);
    expect(plan.place[0]!.reason).toBe("index 0 of 3 is missing");
    expect(plan.stop).toEqual([]);
  });

  it("does nothing when every index runs", () => {
    const plan = converge(desired([proc()]), [inst({ instance_guid: "i0" }), inst({ instance_guid: "i1", index: 1 })], cells, NOW);
    expect(plan).toEqual({ place: [], replace: [], stop: [], markLost: [], promote: [] });
  });

  it("retries UNCLAIMED instances instead of making new ones", () => {
    const plan = converge(desired([proc({ instances: 1 })]), [inst({ instance_guid: "u0", state: "UNCLAIMED", cell_guid: null })], cells, NOW);
    expect(plan.place).toEqual([{ process_guid: "p1", index: 0, crash_count: 0, instance_guid: "u0", reason: "not placed yet" }]);
  });
});

describe("converge: extra and undesired instances", () => {
  it("stops indices beyond the desired count, highest index first", () => {
    const actual = [0, 1, 2, 3].map((index) => inst({ instance_guid: `i${index}`, index }));
    const plan = converge(desired([proc({ instances: 2 })]), actual, cells, NOW);
    expect(plan.stop.map((s) => [s.instance_guid, s.cause])).toEqual([["i3", "extra_index"], ["i2", "extra_index"]]);
    expect(plan.place).toEqual([]);
  });

  it("stops instances of a process that is no longer desired (app stopped)", () => {
    const plan = converge(desired([]), [inst({ instance_guid: "i0" })], cells, NOW);
    expect(plan.stop).toEqual([{ instance_guid: "i0", cause: "process_not_desired", reason: "app stopped or process removed" }]);
  });

  it("stops instances of an older process version and places the new version (restart)", () => {
    const plan = converge(desired([proc({ version: "v2", instances: 1 })]), [inst({ instance_guid: "old" })], cells, NOW);
    expect(plan.stop.map((s) => [s.instance_guid, s.cause])).toEqual([["old", "version_changed"]]);
    expect(plan.place.map((p) => p.index)).toEqual([0]);
  });

  it("keeps two instances of one index from both living: the running one stays", () => {
    const plan = converge(desired([proc({ instances: 1 })]), [
      inst({ instance_guid: "starting", state: "STARTING", since: NOW }),
      inst({ instance_guid: "running" }),
    ], cells, NOW);
    expect(plan.stop.map((s) => [s.instance_guid, s.cause])).toEqual([["starting", "duplicate"]]);
  });
});

describe("converge: the diego_docker flag", () => {
  it("counts desired Docker instances as zero while the flag is off", () => {
    const actual = [inst({ instance_guid: "i0" }), inst({ instance_guid: "i1", index: 1, state: "CRASHED", crash_count: 1 })];
    const plan = converge(desired([proc()], false), actual, cells, NOW);
    expect(plan.stop.map((s) => [s.instance_guid, s.cause, s.reason])).toEqual([
      ["i0", "diego_docker_disabled", "feature flag diego_docker is disabled"],
      ["i1", "diego_docker_disabled", "feature flag diego_docker is disabled"],
    ]);
    expect(plan.place).toEqual([]);
    expect(plan.replace).toEqual([]);
  });

  it("places them again once the flag is back on", () => {
    const plan = converge(desired([proc()], true), [], cells, NOW);
    expect(plan.place.map((p) => p.index)).toEqual([0, 1]);
  });
});

describe("converge: crashed instances (restart calculator)", () => {
  const one = desired([proc({ instances: 1 })]);
  it.each([
    ["1st crash restarts at once", 1, 0, true],
    ["2nd crash restarts at once", 2, 0, true],
    ["3rd crash waits 30 s", 3, 29_999, false],
    ["3rd crash restarts after 30 s", 3, 30_000, true],
    ["5th crash waits 2 min", 5, 119_999, false],
    ["5th crash restarts after 2 min", 5, 120_000, true],
    ["9th crash restarts after the 16 min cap", 9, 16 * 60_000, true],
    ["200th crash never restarts", 200, 365 * 24 * 3_600_000, false],
  ])("%s", (_name, crash_count, sinceCrash, restarts) => {
    const plan = converge(one, [inst({ instance_guid: "c", state: "CRASHED", crash_count, since: NOW - sinceCrash })], cells, NOW);
    expect(plan.replace.map((r) => [r.instance_guid, r.keep, r.crash_count])).toEqual(restarts ? [["c", null, crash_count]] : []);
    // A crashed instance still holds its index: no second instance while it waits.
    expect(plan.place).toEqual([]);
  });
});

describe("converge: lost cells", () => {
  const stale = [cell({ guid: "c1", last_heartbeat_at: NOW - 15_001 }), cell({ guid: "c2", zone: "z2" })];

  it("marks a cell whose heartbeat is older than the TTL lost, and not one at the TTL", () => {
    expect(converge(desired([]), [], stale, NOW).markLost).toEqual([{ cell_guid: "c1", reason: "no heartbeat for more than 15 s" }]);
    expect(converge(desired([]), [], [cell({ guid: "c1", last_heartbeat_at: NOW - 15_000 })], NOW).markLost).toEqual([]);
  });

  it("honours a configured TTL", () => {
    const plan = converge(desired([]), [], [cell({ guid: "c1", last_heartbeat_at: NOW - 2_001 })], NOW, { ...C, heartbeatTtlMs: 2_000 });
    expect(plan.markLost.map((m) => m.cell_guid)).toEqual(["c1"]);
  });

  it("replaces its instances elsewhere, keeping a RUNNING one routable as SUSPECT", () => {
    const plan = converge(desired([proc()]), [
      inst({ instance_guid: "run", index: 0 }),
      inst({ instance_guid: "start", index: 1, state: "STARTING" }),
    ], stale, NOW);
    expect(plan.replace.map((r) => [r.instance_guid, r.index, r.keep])).toEqual([["run", 0, "SUSPECT"], ["start", 1, null]]);
    expect(plan.place).toEqual([]);
    expect(plan.stop).toEqual([]);
  });

  it("stops the SUSPECT copy once its replacement runs", () => {
    const plan = converge(desired([proc({ instances: 1 })]), [
      inst({ instance_guid: "suspect", presence: "SUSPECT" }),
      inst({ instance_guid: "new", cell_guid: "c2" }),
    ], stale, NOW);
    expect(plan.stop).toEqual([{ instance_guid: "suspect", cause: "replacement_settled", reason: "replacement new is RUNNING" }]);
  });

  it("keeps the SUSPECT copy while its replacement is still starting", () => {
    const plan = converge(desired([proc({ instances: 1 })]), [
      inst({ instance_guid: "suspect", presence: "SUSPECT" }),
      inst({ instance_guid: "new", cell_guid: "c2", state: "STARTING" }),
    ], stale, NOW);
    expect(plan).toEqual({ place: [], replace: [], stop: [], markLost: [{ cell_guid: "c1", reason: "no heartbeat for more than 15 s" }], promote: [] });
  });

  it("promotes the SUSPECT copy when its cell heartbeats again before the replacement runs", () => {
    const plan = converge(desired([proc({ instances: 1 })]), [
      inst({ instance_guid: "suspect", presence: "SUSPECT" }),
      inst({ instance_guid: "new", cell_guid: "c2", state: "CLAIMED" }),
    ], cells, NOW);
    expect(plan.promote.map((p) => p.instance_guid)).toEqual(["suspect"]);
    expect(plan.stop.map((s) => [s.instance_guid, s.cause])).toEqual([["new", "suspect_returned"]]);
    expect(plan.place).toEqual([]);
  });

  it("forgets STOPPING instances on a dead cell", () => {
    const plan = converge(desired([]), [inst({ instance_guid: "s", state: "STOPPING" })], stale, NOW);
    expect(plan.stop.map((s) => [s.instance_guid, s.cause])).toEqual([["s", "cell_lost"]]);
  });

  it("leaves STOPPING instances on a live cell to their cell", () => {
    expect(converge(desired([]), [inst({ instance_guid: "s", state: "STOPPING" })], cells, NOW).stop).toEqual([]);
  });
});

describe("converge: most cells silent at once (a disruption)", () => {
  const fleet = (silent: number) => Array.from({ length: 10 }, (_, i) => cell({ guid: `c${i}`, last_heartbeat_at: i < silent ? NOW - 20_000 : NOW - 1_000 }));
  const onSilent = [inst({ instance_guid: "run", index: 0, cell_guid: "c0" }), inst({ instance_guid: "start", index: 1, cell_guid: "c0", state: "STARTING" })];

  it("marks no cell lost and replaces nothing when more than 55% of the active cells are silent", () => {
    const plan = converge(desired([proc()]), onSilent, fleet(6), NOW);
    expect(plan).toEqual({ place: [], replace: [], stop: [], markLost: [], promote: [] });
  });

  it("marks the silent cells lost (one per pass under the rate limit) and replaces their instances at 55% or fewer", () => {
    const plan = converge(desired([proc()]), onSilent, fleet(5), NOW);
    expect(plan.markLost.map((m) => m.cell_guid)).toEqual(["c0"]);
    expect(plan.replace.map((r) => [r.instance_guid, r.keep])).toEqual([["run", "SUSPECT"], ["start", null]]);
  });

  it("still marks a lone silent cell lost in a fleet of one or two", () => {
    expect(converge(desired([]), [], [cell({ guid: "c1", last_heartbeat_at: NOW - 20_000 })], NOW).markLost.map((m) => m.cell_guid)).toEqual(["c1"]);
    const two = [cell({ guid: "c1", last_heartbeat_at: NOW - 20_000 }), cell({ guid: "c2", last_heartbeat_at: NOW - 20_000 })];
    expect(converge(desired([]), [], two, NOW).markLost.map((m) => m.cell_guid)).toEqual(["c1"]);
  });
});

describe("converge: drained cells (evacuation)", () => {
  const draining = [cell({ guid: "c1", state: "DRAINING" }), cell({ guid: "c2", zone: "z2" })];

  it("replaces instances elsewhere, the RUNNING ones serving as EVACUATING meanwhile", () => {
    const plan = converge(desired([proc()]), [
      inst({ instance_guid: "run", index: 0 }),
      inst({ instance_guid: "claimed", index: 1, state: "CLAIMED" }),
    ], draining, NOW);
    expect(plan.replace.map((r) => [r.instance_guid, r.keep, r.reason])).toEqual([
      ["run", "EVACUATING", "cell c1 is draining"],
      ["claimed", null, "cell c1 is draining"],
    ]);
  });

  it("stops the EVACUATING copy once the replacement runs or crashes", () => {
    for (const state of ["RUNNING", "CRASHED"] as const) {
      const plan = converge(desired([proc({ instances: 1 })]), [
        inst({ instance_guid: "evac", presence: "EVACUATING" }),
        inst({ instance_guid: "new", cell_guid: "c2", state, crash_count: state === "CRASHED" ? 3 : 0, since: NOW }),
      ], draining, NOW);
      expect(plan.stop.map((s) => [s.instance_guid, s.cause])).toEqual([["evac", "replacement_settled"]]);
    }
  });

  it("places a new instance if the replacement vanished while the copy evacuates", () => {
    const plan = converge(desired([proc({ instances: 1 })]), [inst({ instance_guid: "evac", presence: "EVACUATING" })], draining, NOW);
    expect(plan.place.map((p) => p.index)).toEqual([0]);
    expect(plan.stop).toEqual([]);
  });
});

describe("converge: placements a cell never acknowledged", () => {
  // The cell heartbeated just now, after every claim below timed out: it is alive and saw its set.
  const beating = [cell({ guid: "c1", last_heartbeat_at: NOW }), cell({ guid: "c2", zone: "z2", last_heartbeat_at: NOW })];

  it("places a CLAIMED instance again once the claim timeout passes, not before", () => {
    const claimed = (age: number) => inst({ instance_guid: "c", state: "CLAIMED", since: NOW - age });
    expect(converge(desired([proc({ instances: 1 })]), [claimed(30_000)], beating, NOW).replace).toEqual([]);
    const plan = converge(desired([proc({ instances: 1 })]), [claimed(30_001)], beating, NOW);
    expect(plan.replace).toEqual([{
      instance_guid: "c", process_guid: "p1", index: 0, crash_count: 0, keep: null, avoid_cell: "c1", reason: "cell c1 did not acknowledge it within 30 s",
    }]);
    expect(plan.place).toEqual([]);
  });

  it("honours a configured timeout and leaves STARTING instances alone", () => {
    const config = { ...C, claimTimeoutMs: 1_000 };
    const plan = converge(desired([proc()]), [
      inst({ instance_guid: "c", state: "CLAIMED", since: NOW - 1_001 }),
      inst({ instance_guid: "s", index: 1, state: "STARTING", since: NOW - 120_000 }),
    ], beating, NOW, config);
    expect(ids(plan.replace)).toEqual(["c"]);
  });

  it("keeps its crash count (a lost placement is not a crash)", () => {
    const plan = converge(desired([proc({ instances: 1 })]), [inst({ instance_guid: "c", state: "CLAIMED", crash_count: 4, since: NOW - 31_000 })], beating, NOW);
    expect(plan.replace[0]!.crash_count).toBe(4);
  });

  it("keeps a claim whose cell has not heartbeated since the timeout: the acknowledgement may be on its way", () => {
    const claimed = inst({ instance_guid: "c", state: "CLAIMED", since: NOW - 40_000 });
    const beatBefore = [cell({ guid: "c1", last_heartbeat_at: NOW - 10_001 })];
    expect(converge(desired([proc({ instances: 1 })]), [claimed], beatBefore, NOW).replace).toEqual([]);
    const beatAfter = [cell({ guid: "c1", last_heartbeat_at: NOW - 9_999 })];
    expect(ids(converge(desired([proc({ instances: 1 })]), [claimed], beatAfter, NOW).replace)).toEqual(["c"]);
  });

  it("does not count the control plane's stalls against a claim", () => {
    const claimed = inst({ instance_guid: "c", state: "CLAIMED", since: NOW - 40_000 });
    const stalled: Stall[] = [{ from: NOW - 30_000, to: NOW - 19_000 }];
    expect(converge(desired([proc({ instances: 1 })]), [claimed], beating, NOW, C, { stalls: stalled, lastLostAt: null }).replace).toEqual([]);
    const shorter: Stall[] = [{ from: NOW - 30_000, to: NOW - 21_000 }];
    expect(ids(converge(desired([proc({ instances: 1 })]), [claimed], beating, NOW, C, { stalls: shorter, lastLostAt: null }).replace)).toEqual(["c"]);
  });
});

describe("nextDueAt", () => {
  it("includes the moment a claim times out", () => {
    const claimed = inst({ instance_guid: "c", state: "CLAIMED", since: NOW - 10_000 });
    expect(nextDueAt([claimed], [], NOW, C)).toBe(NOW + 20_001);
  });

  it("is the earliest heartbeat expiry, backoff end or unplaced retry", () => {
    const cs = [cell({ guid: "c1", last_heartbeat_at: NOW - 1_000 }), cell({ guid: "c2", last_heartbeat_at: NOW - 10_000 })];
    expect(nextDueAt([], cs, NOW, C)).toBe(NOW - 10_000 + 15_001);
    const crashed = inst({ instance_guid: "x", state: "CRASHED", crash_count: 3, since: NOW - 28_000 });
    expect(nextDueAt([crashed], cs, NOW, C)).toBe(NOW + 2_000);
    const unplaced = inst({ instance_guid: "u", state: "UNCLAIMED", cell_guid: null });
    expect(nextDueAt([unplaced], [], NOW, { ...C, unplacedRetryMs: 500 })).toBe(NOW + 500);
  });

  it("is null when nothing will become due (no live cells, crashes past the maximum)", () => {
    const dead = cell({ guid: "c1", last_heartbeat_at: NOW - 60_000 });
    expect(nextDueAt([inst({ instance_guid: "x", state: "CRASHED", crash_count: 200 })], [dead], NOW, C)).toBeNull();
  });
});
