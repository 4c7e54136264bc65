/**
 * @module What the cell needs of its host, checked once at start-up before it
 * enrolls: a refusal names the missing feature and the kernel that has it
 * (docs/deploy.md, "Hosts"). Features with a fallback are not refusals; the
 * agent logs which fallback it runs. `checkHost` decides from probe results
 * (pure, tested without a kernel); `probeHost` tries each feature for real.
 */
import { release } from "node:os";
import { probeOverlay, type OverlayFeatures } from "../rootfs/rootfs-manager";
import { UserNamespacePool } from "../rootfs/userns-pool";
import { LIMITED_CONTROLLERS, type CgroupLayout } from "../runtime/cgroups";
import { detectCgroupLayout } from "../runtime/runtime";

/** The oldest kernel Berth supports: Ubuntu 22.04's. openat2 (5.6), LOOP_CONFIGURE (5.8) and pidfds (5.3) are below it. */
export const MIN_KERNEL = [5, 15] as const;

export interface HostFeatures extends OverlayFeatures {
  /** `uname -r`. */
  kernel: string;
  userNamespaces: boolean;
  cgroups: CgroupLayout;
}

export interface HostCheck {
  /** Refusals: the agent cannot run containers here. */
  missing: string[];
  /** Slower or narrower paths the agent takes instead. */
  fallbacks: string[];
}

/** [major, minor] of a kernel release string ("6.1.0-28-amd64" → [6, 1]); null if unreadable. */
export function kernelVersion(releaseText: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(releaseText);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

export function checkHost(f: HostFeatures): HostCheck {
  const missing: string[] = [];
  const fallbacks: string[] = [];
  const v = kernelVersion(f.kernel);
  const [minMajor, minMinor] = MIN_KERNEL;
  if (!v || v[0] < minMajor || (v[0] === minMajor && v[1] < minMinor))
    missing.push(`Linux ${minMajor}.${minMinor} or newer (this host runs ${f.kernel}): openat2, LOOP_CONFIGURE, pidfds and the new mount API`);
  if (!f.userNamespaces)
    missing.push("user namespaces: none could be made (needs CONFIG_USER_NS and sysctl user.max_user_namespaces > 0; Linux 5.15 has them)");
  if (!f.overlay) missing.push("overlayfs: no overlay could be mounted (needs the overlay module, modprobe overlay; Linux 5.15 has it)");
  for (const c of LIMITED_CONTROLLERS) {
    if (f.cgroups.v1[c] || f.cgroups.v2?.controllers.includes(c)) continue;
    missing.push(`cgroup controller ${c}: neither a cgroup v1 hierarchy nor the cgroup2 root offers it (enable it at boot, or delegate it to the agent's unit; Linux 5.15 has it)`);
  }
  if (f.overlay && !f.lowerdirAppend)
    fallbacks.push("overlay lowerdir+ needs Linux 6.8: layers are mounted as one colon-joined lowerdir of short links (up to about 400 layers)");
  if (f.overlay && !f.idmappedLowers)
    fallbacks.push("overlay over idmapped layers needs Linux 5.19: each layer is copied with shifted ids per container id range (slower first starts, more disk)");
  return { missing, fallbacks };
}

/** Tries each feature on this host. */
export async function probeHost(): Promise<HostFeatures> {
  const userns = new UserNamespacePool();
  try {
    let userNamespaces = true;
    try {
      userns.fdFor({ hostId: 100000, size: 65536 });
    } catch {
      userNamespaces = false;
    }
    return { kernel: release(), userNamespaces, ...probeOverlay(userNamespaces ? userns : null), cgroups: await detectCgroupLayout() };
  } finally {
    userns.close();
  }
}

/** The agent's refusal of a host; it exits with EXIT_HOST_UNFIT. */
export class HostUnfit extends Error {
  constructor(readonly missing: string[]) {
    super(`this host cannot run Berth's containers; missing:\n  - ${missing.join("\n  - ")}`);
    this.name = "HostUnfit";
  }
}

/** sysexits' EX_CONFIG: the systemd unit does not restart an agent that refused its host (RestartPreventExitStatus). */
export const EXIT_HOST_UNFIT = 78;

/** `berth-agent check-host`: what this host offers, in lines for an operator; exit status 0 or EXIT_HOST_UNFIT. */
export async function runCheckHost(out: (line: string) => void): Promise<number> {
  const host = await probeHost();
  const { missing, fallbacks } = checkHost(host);
  const cg = host.cgroups;
  out(`kernel ${host.kernel}; user namespaces ${host.userNamespaces ? "yes" : "no"}; overlay ${host.overlay ? "yes" : "no"}, lowerdir+ ${host.lowerdirAppend ? "yes" : "no"}, idmapped lowers ${host.idmappedLowers ? "yes" : "no"}`);
  out(`cgroups: v1 ${Object.keys(cg.v1).join(" ") || "none"}; v2 ${cg.v2 ? `${cg.v2.mount} (${cg.v2.controllers.join(" ") || "no controllers of ours"})` : "none"}`);
  for (const f of fallbacks) out(`fallback: ${f}`);
  for (const m of missing) out(`missing: ${m}`);
  out(missing.length === 0 ? "this host can run Berth cells" : "this host cannot run Berth cells");
  return missing.length === 0 ? 0 : EXIT_HOST_UNFIT;
}
