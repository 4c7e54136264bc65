/**
 * @module Resource usage read from a container's cgroups (v1 and v2 files),
 * and CPU as a fraction of one core between two samples (pure).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export interface UsageSample {
  /** When the sample was taken (ms). */
  at: number;
  /** Cumulative CPU time (ns). */
  cpuNs: number;
  memBytes: number;
}

const readNumber = (path: string) => readFile(path, "utf8").then((t) => Number(t.trim()), () => null);

async function cpuNs(dir: string): Promise<number | null> {
  const v1 = await readNumber(join(dir, "cpuacct.usage"));
  if (v1 !== null) return v1;
  const stat = await readFile(join(dir, "cpu.stat"), "utf8").catch(() => null);
  const m = stat && /^usage_usec (\d+)$/m.exec(stat);
  return m ? Number(m[1]) * 1000 : null;
}

/** Samples the first cgroup directory that has each counter (v1 spreads them over hierarchies). */
export async function sampleUsage(cgroupPaths: readonly string[], now: number): Promise<UsageSample> {
  let cpu: number | null = null;
  let mem: number | null = null;
  for (const dir of cgroupPaths) {
    cpu ??= await cpuNs(dir);
    mem ??= (await readNumber(join(dir, "memory.usage_in_bytes"))) ?? (await readNumber(join(dir, "memory.current")));
  }
  return { at: now, cpuNs: cpu ?? 0, memBytes: mem ?? 0 };
}

/** CPU between two samples as a fraction of one core (CF's stats `cpu`). */
export function cpuFraction(prev: UsageSample, next: UsageSample): number {
  const wallNs = (next.at - prev.at) * 1e6;
  if (wallNs <= 0 || next.cpuNs < prev.cpuNs) return 0;
  return (next.cpuNs - prev.cpuNs) / wallNs;
}
