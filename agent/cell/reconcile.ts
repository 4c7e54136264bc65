/**
 * @module Compare, then act (the kubelet's way): what to start and what to stop
 * so that a cell runs exactly its desired set. Pure; the agent applies it.
 */
import type { InstanceSpec } from "../../shared/protocol/instance";

export interface ReconcilePlan {
  start: InstanceSpec[];
  /** Instance guids to stop: no longer desired, or desired with a different spec. */
  stop: string[];
}

/** Specs compare by content: a changed spec under the same guid is replaced. */
const sameSpec = (a: InstanceSpec, b: InstanceSpec) => JSON.stringify(a) === JSON.stringify(b);

export function reconcile(desired: InstanceSpec[], running: ReadonlyMap<string, InstanceSpec>): ReconcilePlan {
  const want = new Map(desired.map((s) => [s.instance_guid, s]));
  const stop: string[] = [];
  const start: InstanceSpec[] = [];
  for (const [guid, spec] of running) {
    const next = want.get(guid);
    if (!next || !sameSpec(next, spec)) stop.push(guid);
  }
  for (const spec of desired) {
    const current = running.get(spec.instance_guid);
    if (!current || !sameSpec(current, spec)) start.push(spec);
  }
  return { start, stop };
}
