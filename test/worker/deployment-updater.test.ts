/**
 * The deployment updater's steps as pure decisions (no D1): CC's rolling
 * rules — an old instance goes only once a new one is RUNNING, new ones grow
 * max_in_flight at a time, a crash halts the roll without dropping old
 * instances, cancel keeps the prior process at full scale.
 */
import { describe, expect, it } from "vitest";
import {
  type ActiveDeployment, countInstances, type InstanceCounts, stepDeployment, supersededStatus, type WebProcess,
} from "../../worker/deployments/updater";

const NONE: InstanceCounts = { starting: 0, routable: 0, unhealthy: 0 };
const deployment = (extra: Partial<ActiveDeployment> = {}): ActiveDeployment => ({
  guid: "d1", state: "DEPLOYING", deployingProcessGuid: "new", targetInstances: 3, maxInFlight: 1, ...extra,
});
const proc = (guid: string, instances: number, counts: Partial<InstanceCounts> = {}, extra: Partial<WebProcess> = {}): WebProcess => ({
  guid, instances, counts: { ...NONE, ...counts }, ...extra,
});

describe("countInstances", () => {
  it("counts as CC's instances reporter: RUNNING routable, CRASHED unhealthy, placed or starting as starting; STOPPING not at all", () => {
    expect(countInstances(["RUNNING", "RUNNING", "STARTING", "CLAIMED", "UNCLAIMED", "CRASHED", "STOPPING"]))
      .toEqual({ starting: 3, routable: 2, unhealthy: 1 });
  });
});

describe("rolling step", () => {
  it("waits while the first new instance starts: nothing changes, no old instance stops", () => {
    const step = stepDeployment(deployment(), [proc("old", 3, { routable: 3 }), proc("new", 1, { starting: 1 })]);
    expect(step).toEqual({ scale: [], remove: [], healthy: false });
  });

  it("once a new instance RUNS: one old instance goes and the next new one is asked for", () => {
    const step = stepDeployment(deployment(), [proc("old", 3, { routable: 3 }), proc("new", 1, { routable: 1 })]);
    expect(step.scale).toEqual([{ processGuid: "old", instances: 2 }, { processGuid: "new", instances: 2 }]);
    expect(step.remove).toEqual([]);
    expect(step.status).toBeUndefined();
    expect(step.healthy).toBe(true);
  });

  it("a CRASHED new instance halts the roll: no old instance is dropped, no new one is added", () => {
    const step = stepDeployment(deployment(), [proc("old", 3, { routable: 3 }), proc("new", 1, { unhealthy: 1 })]);
    expect(step).toEqual({ scale: [], remove: [], healthy: false });
  });

  it("a crash after some progress keeps exactly target minus running-new old instances", () => {
    const step = stepDeployment(deployment(), [proc("old", 2, { routable: 2 }), proc("new", 2, { routable: 1, unhealthy: 1 })]);
    expect(step).toEqual({ scale: [], remove: [], healthy: false });
  });

  it("does not grow before the last step's instances have reported (the updater and the cells are out of step)", () => {
    const step = stepDeployment(deployment({ maxInFlight: 1 }), [proc("old", 2, { routable: 2 }), proc("new", 3, { routable: 1 })]);
    expect(step.scale).toEqual([]);
  });

  it("finishes when the target runs new: the old processes go and the deployment is DEPLOYED", () => {
    const step = stepDeployment(deployment(), [proc("old", 1, { routable: 1 }), proc("new", 3, { routable: 3 })]);
    expect(step.remove).toEqual(["old"]);
    expect(step.status).toEqual({ state: "DEPLOYED", statusValue: "FINALIZED", statusReason: "DEPLOYED" });
  });

  it("max_in_flight 2 asks for two new instances at a time and never more than the target", () => {
    const d = deployment({ targetInstances: 3, maxInFlight: 2 });
    expect(stepDeployment(d, [proc("old", 3, { routable: 3 }), proc("new", 2, { routable: 2 })]).scale)
      .toEqual([{ processGuid: "old", instances: 1 }, { processGuid: "new", instances: 3 }]);
  });

  it("old interim processes are scaled down oldest first; an interim one at zero goes", () => {
    const web = [proc("orig", 1, { routable: 1 }), proc("interim", 2, { routable: 2 }, { supersededAs: "DEPLOYED" }), proc("new", 1, { routable: 1 })];
    const step = stepDeployment(deployment(), web);
    // target 3 - 1 running new = 2 old kept: orig (oldest) goes to 0 and stays, interim keeps 2.
    expect(step.scale).toEqual([{ processGuid: "orig", instances: 0 }, { processGuid: "new", instances: 2 }]);
    const interim = (guid: string, n: number) => proc(guid, n, { routable: n }, { supersededAs: "DEPLOYED" });
    const later = stepDeployment(deployment(), [proc("orig", 0), interim("i1", 1), interim("i2", 2), proc("new", 1, { routable: 1 })]);
    expect(later.remove).toEqual(["i1"]);
    expect(later.scale).toEqual([{ processGuid: "new", instances: 2 }]);
  });

  it("a process of a deployment superseded while canceling is scaled to zero at once", () => {
    const web = [proc("orig", 3, { routable: 3 }), proc("canceled", 1, { routable: 1 }, { supersededAs: "CANCELED" }), proc("new", 1, { starting: 1 })];
    expect(stepDeployment(deployment(), web).scale).toEqual([{ processGuid: "canceled", instances: 0 }]);
  });

  it("does nothing when the deploying process is gone", () => {
    expect(stepDeployment(deployment(), [proc("old", 3, { routable: 3 })])).toEqual({ scale: [], remove: [], healthy: false });
  });

  it("simulated to the end: every step keeps target routable instances, and total never passes target + max_in_flight", () => {
    const target = 4;
    const d = deployment({ targetInstances: target });
    let old = proc("old", target, { routable: target });
    let fresh = proc("new", 1, { starting: 1 });
    for (let round = 0; round < 20; round++) {
      // The cells: every asked-for new instance starts, then runs; old ones stop at once.
      fresh = proc("new", fresh.instances, { routable: fresh.counts.routable + fresh.counts.starting, starting: fresh.instances - fresh.counts.routable - fresh.counts.starting });
      const step = stepDeployment(d, [old, fresh]);
      if (step.status?.state === "DEPLOYED") {
        expect(step.remove).toEqual(["old"]);
        expect(fresh.counts.routable).toBe(target);
        return;
      }
      for (const s of step.scale) {
        if (s.processGuid === "old") old = proc("old", s.instances, { routable: s.instances });
        else fresh = proc("new", s.instances, { routable: fresh.counts.routable, starting: s.instances - fresh.counts.routable });
      }
      expect(old.counts.routable + fresh.counts.routable).toBeGreaterThanOrEqual(target);
      expect(old.instances + fresh.instances).toBeLessThanOrEqual(target + d.maxInFlight);
    }
    throw new Error("the roll never finished");
  });
});

describe("cancel step", () => {
  it("keeps the oldest process at the original count, removes the new one, CANCELED", () => {
    const step = stepDeployment(deployment({ state: "CANCELING" }), [proc("old", 2, { routable: 2 }), proc("new", 2, { routable: 1, unhealthy: 1 })]);
    expect(step.scale).toEqual([{ processGuid: "old", instances: 3 }]);
    expect(step.remove).toEqual(["new"]);
    expect(step.status).toEqual({ state: "CANCELED", statusValue: "FINALIZED", statusReason: "CANCELED" });
  });

  it("goes back to a superseded deployment's running process rather than the oldest", () => {
    const web = [proc("orig", 0), proc("interim", 2, { routable: 2 }, { supersededAs: "DEPLOYED" }), proc("new", 1, { unhealthy: 1 })];
    const step = stepDeployment(deployment({ state: "CANCELING" }), web);
    expect(step.scale).toEqual([{ processGuid: "interim", instances: 3 }]);
    expect(step.remove).toEqual(["orig", "new"]);
  });
});

describe("supersededStatus", () => {
  it("a DEPLOYING deployment becomes DEPLOYED, a CANCELING one CANCELED, both FINALIZED/SUPERSEDED", () => {
    expect(supersededStatus("DEPLOYING")).toEqual({ state: "DEPLOYED", statusValue: "FINALIZED", statusReason: "SUPERSEDED" });
    expect(supersededStatus("CANCELING")).toEqual({ state: "CANCELED", statusValue: "FINALIZED", statusReason: "SUPERSEDED" });
  });
});
