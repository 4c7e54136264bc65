/**
 * @module Compare, then act (the kubelet's way): what to start and what to stop
 * so that a cell runs exactly its desired set. Pure; the agent applies it.
 */
import { isInstanceRef, type DesiredInstance } from "../../shared/protocol/desired-set";
import type { InstanceSpec } from "../../shared/protocol/instance";

export interface ReconcilePlan {
  start: InstanceSpec[];
  /** Instance guids to stop: no longer desired, or desired with a different spec. */
  stop: string[];
  /** References (`specs=new`) to instances this cell does not run: their specs must be asked for. */
  unknown: string[];
}

/**
 * The spec without its pull credentials: what the cell writes to disk (the
 * password stays in memory; after a restart the control plane's desired set
 * carries it again) and what identifies a spec.
 */
export function withoutCredentials(spec: InstanceSpec): InstanceSpec {
  const { credentials: _, ...image } = spec.image;
  return { ...spec, image };
}

/** Specs compare by content, credentials aside: a changed spec under the same guid is replaced, a re-adopted one read from disk is not. */
const sameSpec = (a: InstanceSpec, b: InstanceSpec) => JSON.stringify(withoutCredentials(a)) === JSON.stringify(withoutCredentials(b));

/** A reference names an instance the cell took with the spec it runs: it is always the same spec. */
export function reconcile(desired: DesiredInstance[], running: ReadonlyMap<string, InstanceSpec>): ReconcilePlan {
  const want = new Map(desired.map((s) => [s.instance_guid, s]));
  const stop: string[] = [];
  const start: InstanceSpec[] = [];
  const unknown: string[] = [];
  for (const [guid, spec] of running) {
    const next = want.get(guid);
    if (!next || (!isInstanceRef(next) && !sameSpec(next, spec))) stop.push(guid);
  }
  for (const wanted of desired) {
    const current = running.get(wanted.instance_guid);
    if (isInstanceRef(wanted)) {
      if (!current) unknown.push(wanted.instance_guid);
    } else if (!current || !sameSpec(current, wanted)) start.push(wanted);
  }
  return { start, stop, unknown };
}
