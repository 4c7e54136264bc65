/**
 * @module The deployment updater's decisions, pure (cloud_controller_ng's
 * DeploymentUpdater: Scale, DownScaler, UpScaler, Finalize, Cancel, without
 * their I/O). The scheduler calls `stepDeployment` for each ACTIVE deployment
 * in a pass and converges on the instance counts it chose, in the same pass.
 *
 * Rolling (DEPLOYING), one step:
 * - The old web processes (oldest first) keep `target - routable new` instances:
 *   an old instance is stopped only once a new one is RUNNING (health check
 *   passed), so the routes always have `target` healthy instances.
 * - The deploying process grows to `routable + max_in_flight` (at most the
 *   target) only while none of its instances is CRASHED, fewer than
 *   max_in_flight are starting, and the last step's instances have reported.
 * - When it has `target` RUNNING instances, the other web processes go and the
 *   deployment is DEPLOYED (FINALIZED).
 * A deployment whose new instances crash therefore never drops an old one; as
 * on CC it waits (Diego keeps restarting the crashed instance) until it is
 * canceled: the cf CLI cancels it itself when its start timeout passes.
 *
 * Canceling (CANCELING): the prior web process (a superseded deployment's
 * still-running one, else the oldest) goes back to the original instance
 * count, every other web process goes, and the deployment is CANCELED.
 */

export type DeploymentState = "DEPLOYING" | "CANCELING" | "DEPLOYED" | "CANCELED";
export type StatusValue = "ACTIVE" | "FINALIZED";
export type StatusReason = "DEPLOYING" | "CANCELING" | "DEPLOYED" | "CANCELED" | "SUPERSEDED";

export interface DeploymentStatus {
  state: DeploymentState;
  statusValue: StatusValue;
  statusReason: StatusReason;
}

export const DEPLOYING: DeploymentStatus = { state: "DEPLOYING", statusValue: "ACTIVE", statusReason: "DEPLOYING" };
export const CANCELING: DeploymentStatus = { state: "CANCELING", statusValue: "ACTIVE", statusReason: "CANCELING" };
export const DEPLOYED: DeploymentStatus = { state: "DEPLOYED", statusValue: "FINALIZED", statusReason: "DEPLOYED" };
export const CANCELED: DeploymentStatus = { state: "CANCELED", statusValue: "FINALIZED", statusReason: "CANCELED" };

/** What a new deployment makes of the app's active one: a DEPLOYING one counts as DEPLOYED, a CANCELING one as CANCELED (CC). */
export function supersededStatus(previous: DeploymentState): DeploymentStatus {
  return { state: previous === "DEPLOYING" ? "DEPLOYED" : "CANCELED", statusValue: "FINALIZED", statusReason: "SUPERSEDED" };
}

/** CC's cancelable?: a deployment still in progress. */
export const isCancelable = (state: DeploymentState): boolean => state === "DEPLOYING" || state === "CANCELING";

export interface ActiveDeployment {
  guid: string;
  state: "DEPLOYING" | "CANCELING";
  deployingProcessGuid: string;
  /** The web instance count it rolls to (CC's original_web_process_instance_count). */
  targetInstances: number;
  maxInFlight: number;
}

/** CC's instance count summary of one process (Diego's states as Berth's). */
export interface InstanceCounts {
  /** Placed or starting, not yet RUNNING. */
  starting: number;
  /** RUNNING: its health check passed and the routers list it. */
  routable: number;
  /** CRASHED. */
  unhealthy: number;
}

export interface WebProcess {
  guid: string;
  instances: number;
  counts: InstanceCounts;
  /** It was the deploying process of a deployment another superseded, which then counted as this. */
  supersededAs?: "DEPLOYED" | "CANCELED";
}

export interface DeploymentStep {
  /** New desired instance counts, by process guid. */
  scale: { processGuid: string; instances: number }[];
  /** Web processes that go (their instances stop). */
  remove: string[];
  /** The deployment's new status, when it changes. */
  status?: DeploymentStatus;
  /** The step grew the deploying process after a healthy check (CC's last_healthy_at). */
  healthy: boolean;
}

/** A write of a step happens only while its deployment is still in the state the step was decided from. */
export interface DeploymentGuard {
  deployment_guid: string;
  state: DeploymentState;
}

/** What a step changes on the deployment row (lastHealthyAt in ms since the epoch). */
export type DeploymentChange = Partial<DeploymentStatus> & { lastHealthyAt?: number; error?: null };

const NOTHING: DeploymentStep = { scale: [], remove: [], healthy: false };

/** Counts a process's instances the way CC's instances reporter does. */
export function countInstances(states: Iterable<string>): InstanceCounts {
  const counts: InstanceCounts = { starting: 0, routable: 0, unhealthy: 0 };
  for (const s of states) {
    if (s === "RUNNING") counts.routable++;
    else if (s === "CRASHED") counts.unhealthy++;
    else if (s === "UNCLAIMED" || s === "CLAIMED" || s === "STARTING") counts.starting++;
  }
  return counts;
}

/**
 * One step of a deployment. `webProcesses` are the app's web processes, oldest
 * first (the first is CC's oldest_web_process); a step for a deployment whose
 * deploying process is gone does nothing.
 */
export function stepDeployment(d: ActiveDeployment, webProcesses: WebProcess[]): DeploymentStep {
  const deploying = webProcesses.find((p) => p.guid === d.deployingProcessGuid);
  if (!deploying) return NOTHING;
  return d.state === "CANCELING" ? cancelStep(d, webProcesses) : rollStep(d, deploying, webProcesses);
}

function rollStep(d: ActiveDeployment, deploying: WebProcess, web: WebProcess[]): DeploymentStep {
  const { starting, routable, unhealthy } = deploying.counts;
  const target = d.targetInstances;
  const oldest = web[0]!;
  const others = web.filter((p) => p !== deploying);
  const desiredOld = Math.max(target - routable, 0);
  const oldTotal = others.reduce((n, p) => n + p.instances, 0);
  const canDownscale = oldTotal > desiredOld;
  const canScale = starting < d.maxInFlight && unhealthy === 0 && routable >= deploying.instances - d.maxInFlight;
  if (!canScale && !canDownscale) return NOTHING;

  const counts = new Map<string, number>();
  const remove: string[] = [];
  // Interim processes of a deployment superseded while canceling serve no more (CC's ScaleDownCanceledProcesses).
  for (const p of others) if (p.supersededAs === "CANCELED" && p.instances > 0) counts.set(p.guid, 0);
  let reduce = others.reduce((n, p) => n + (counts.get(p.guid) ?? p.instances), 0) - desiredOld;
  for (const p of others) {
    if (reduce <= 0) break;
    const has = counts.get(p.guid) ?? p.instances;
    if (reduce < has) {
      counts.set(p.guid, has - reduce);
      break;
    }
    reduce -= has;
    // An interim process scaled to nothing goes; the oldest stays until the end (CC's ScaleDownOldProcess).
    if (p === oldest) counts.set(p.guid, 0);
    else {
      counts.delete(p.guid);
      remove.push(p.guid);
    }
  }
  const finished = deploying.instances >= target && routable >= target;
  if (finished) {
    return { scale: [], remove: others.map((p) => p.guid), status: DEPLOYED, healthy: false };
  }
  let healthy = false;
  if (canScale) {
    const next = Math.min(routable + d.maxInFlight, target);
    if (next !== deploying.instances) counts.set(deploying.guid, next);
    healthy = true;
  }
  const scale = [...counts.entries()]
    .filter(([guid, n]) => web.find((p) => p.guid === guid)?.instances !== n)
    .map(([processGuid, instances]) => ({ processGuid, instances }));
  return { scale, remove, healthy };
}

function cancelStep(d: ActiveDeployment, web: WebProcess[]): DeploymentStep {
  // The newest interim process of a deployment superseded while deploying that still has a RUNNING instance, else the oldest.
  const interim = [...web].reverse().find((p) => p.supersededAs === "DEPLOYED" && p.counts.routable > 0);
  const prior = interim ?? web[0]!;
  return {
    scale: prior.instances === d.targetInstances ? [] : [{ processGuid: prior.guid, instances: d.targetInstances }],
    remove: web.filter((p) => p !== prior).map((p) => p.guid),
    status: CANCELED,
    healthy: false,
  };
}
