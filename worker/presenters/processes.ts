/** @module CC v3 shapes of a process and its stats (process_presenter.rb, process_stats_presenter.rb). */
import type { ActualInstance } from "../db/instances";
import type { Process } from "../db/processes";
import { emptyMetadata, type Linker, postLink } from "./links";

export function presentHealthCheck(hc: Process["healthCheck"]) {
  const data: Record<string, number | string | null> = {
    timeout: hc.timeout,
    invocation_timeout: hc.invocationTimeout,
    interval: hc.interval,
  };
  if (hc.type === "http") data.endpoint = hc.endpoint;
  return { type: hc.type, data };
}

export function presentProcess(p: Process, l: Linker) {
  return {
    guid: p.guid,
    type: p.type,
    // CF shows the user's command, else the one detected at staging.
    command: p.command ?? p.detectedCommand,
    user: p.user,
    instances: p.instances,
    memory_in_mb: p.memoryInMb,
    disk_in_mb: p.diskInMb,
    log_rate_limit_in_bytes_per_second: p.logRateLimitInBytesPerSecond,
    health_check: presentHealthCheck(p.healthCheck),
    readiness_health_check: { type: "process", data: { invocation_timeout: null, interval: null } },
    relationships: { app: { data: { guid: p.appGuid } }, revision: null },
    metadata: emptyMetadata(),
    version: p.version,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
    links: {
      self: l(`/v3/processes/${p.guid}`),
      scale: postLink(l, `/v3/processes/${p.guid}/actions/scale`),
      app: l(`/v3/apps/${p.appGuid}`),
      space: l(`/v3/spaces/${p.spaceGuid}`),
      stats: l(`/v3/processes/${p.guid}/stats`),
    },
  };
}

/** CC's state for an actual LRP (instances_reporter.rb translate_lrp_state). */
export function ccState(i: ActualInstance, processStopped: boolean): string {
  if (processStopped) return "STOPPING";
  switch (i.state) {
    case "RUNNING": return "RUNNING";
    case "CLAIMED":
    case "STARTING": return "STARTING";
    case "UNCLAIMED": return i.placementError ? "DOWN" : "STARTING";
    case "CRASHED": return "CRASHED";
    case "STOPPING": return "STOPPING";
  }
}

// When an index has several rows (a replacement on its way), show the most alive.
const RANK: Record<ActualInstance["state"], number> = { RUNNING: 0, STARTING: 1, CLAIMED: 2, UNCLAIMED: 3, CRASHED: 4, STOPPING: 5 };

/** The row shown for each index: only the current version counts (CC asks BBS for `guid-version`). */
export function pickPerIndex(rows: ActualInstance[], version: string): Map<number, ActualInstance> {
  const best = new Map<number, ActualInstance>();
  for (const r of rows) {
    if (r.processVersion !== version) continue;
    const seen = best.get(r.index);
    if (!seen || RANK[r.state] < RANK[seen.state]) best.set(r.index, r);
  }
  return best;
}

const MIB = 1024 * 1024;
/** Diego's default file descriptor limit per container. */
const FDS_QUOTA = 16384;

function presentFound(p: Process, i: ActualInstance, stopped: boolean, now: number) {
  const state = ccState(i, stopped);
  return {
    type: p.type,
    index: i.index,
    instance_guid: i.instanceGuid,
    state,
    routable: state === "RUNNING",
    host: i.cellAddress ?? "",
    instance_internal_ip: "",
    uptime: Math.max(0, Math.floor((now - i.since) / 1000)),
    mem_quota: p.memoryInMb * MIB,
    disk_quota: p.diskInMb * MIB,
    log_rate_limit: p.logRateLimitInBytesPerSecond,
    fds_quota: FDS_QUOTA,
    isolation_segment: null,
    details: i.placementError,
    instance_ports: i.hostPort !== null && i.containerPort !== null
      ? [{ external: i.hostPort, internal: i.containerPort, external_tls_proxy_port: 0, internal_tls_proxy_port: 0 }]
      : [],
    // A crashed instance's last usage is not what it uses now (its cell's next list drops it).
    usage: i.usage && i.usageAt !== null && (state === "RUNNING" || state === "STARTING")
      ? {
        time: new Date(i.usageAt).toISOString(),
        cpu: i.usage.cpu ?? 0,
        cpu_entitlement: 0,
        mem: i.usage.mem ?? 0,
        disk: i.usage.disk ?? 0,
        log_rate: 0,
      }
      : {},
  };
}

function presentDown(p: Process, index: number) {
  return { type: p.type, index, state: "DOWN", routable: false, uptime: 0, isolation_segment: null, details: null };
}

/**
 * `{resources}` sorted by index. A started process shows one entry per desired
 * index (DOWN where nothing is there); a stopped one shows what still runs as
 * STOPPING. `now` is milliseconds since the epoch.
 */
export function presentStats(p: Process, rows: ActualInstance[], now: number) {
  const stopped = p.appState === "STOPPED";
  const best = pickPerIndex(rows, p.version);
  if (stopped) {
    return { resources: [...best.values()].sort((a, b) => a.index - b.index).map((i) => presentFound(p, i, true, now)) };
  }
  const resources = [];
  for (let index = 0; index < p.instances; index++) {
    const i = best.get(index);
    resources.push(i ? presentFound(p, i, false, now) : presentDown(p, index));
  }
  return { resources };
}
