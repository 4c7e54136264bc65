/**
 * @module The updater inside a convergence pass, pure: each ACTIVE deployment
 * of a STARTED app takes one step (updater.ts); the desired state the pass
 * converges on carries the step's instance counts and loses the removed
 * processes, and the step's writes join the pass's write-set, so a new
 * instance is asked for and an old one stopped in the same commit that
 * records the step.
 */
import type { DesiredState } from "../../shared/convergence/model";
import type { WriteOp } from "../scheduling/write-set";
import type { InstanceFacts } from "../scheduling/snapshot";
import { type ActiveDeployment, countInstances, stepDeployment, type WebProcess } from "./updater";

export interface DeploymentFacts {
  active: (ActiveDeployment & { appGuid: string })[];
  /** Each app's web processes, oldest first, with their desired instance count. */
  webProcesses: Map<string, { guid: string; instances: number }[]>;
  /** Deploying processes of superseded deployments, by process guid: what the deployment counted as. */
  superseded: Map<string, "DEPLOYED" | "CANCELED">;
}

export interface DeploymentPass {
  desired: DesiredState;
  writes: WriteOp[];
}

export function stepDeployments(facts: DeploymentFacts, desired: DesiredState, actual: InstanceFacts[], now: number): DeploymentPass {
  const desiredApps = new Set(desired.processes.map((p) => p.app_guid));
  const states = new Map<string, string[]>();
  for (const i of actual) {
    if (i.presence !== "ORDINARY") continue;
    states.set(i.process_guid, [...(states.get(i.process_guid) ?? []), i.state]);
  }
  const scale = new Map<string, number>();
  const removed = new Set<string>();
  const processWrites: WriteOp[] = [];
  const deploymentWrites: WriteOp[] = [];
  for (const d of facts.active) {
    // A stopped app runs nothing: its deployment waits (CC's updater makes no progress either).
    if (!desiredApps.has(d.appGuid)) continue;
    const web: WebProcess[] = (facts.webProcesses.get(d.appGuid) ?? []).map((p) => ({
      guid: p.guid, instances: p.instances, counts: countInstances(states.get(p.guid) ?? []),
      ...(facts.superseded.has(p.guid) ? { supersededAs: facts.superseded.get(p.guid) } : {}),
    }));
    const step = stepDeployment(d, web);
    // Written only while the deployment is still as read: a cancel between the read and the commit wins.
    const guard = { deployment_guid: d.guid, state: d.state };
    for (const s of step.scale) {
      scale.set(s.processGuid, s.instances);
      processWrites.push({ op: "process_instances", process_guid: s.processGuid, instances: s.instances, guard });
    }
    for (const guid of step.remove) {
      removed.add(guid);
      processWrites.push({ op: "process_remove", process_guid: guid, guard });
    }
    if (step.status || step.healthy) {
      deploymentWrites.push({
        op: "deployment", guard,
        set: { ...(step.status ?? {}), ...(step.healthy ? { lastHealthyAt: now } : {}), ...(step.status ? { error: null } : {}) },
      });
    }
  }
  if (processWrites.length === 0 && deploymentWrites.length === 0) return { desired, writes: [] };
  const processes = desired.processes
    .filter((p) => !removed.has(p.process_guid))
    .map((p) => (scale.has(p.process_guid) ? { ...p, instances: scale.get(p.process_guid)! } : p));
  // Process writes first: their guard reads the deployment's state before its own update moves it.
  return { desired: { ...desired, processes }, writes: [...processWrites, ...deploymentWrites] };
}
