/** @module CPU as a fraction of one core between two of Container.usage()'s samples (pure; CF's stats `cpu`). */

export interface UsageSample {
  /** When the sample was taken (ms). */
  at: number;
  /** Cumulative CPU time (µs), as Container.usage() reports it. */
  cpuUsec: number;
}

export function cpuFraction(prev: UsageSample, next: UsageSample): number {
  const wallUsec = (next.at - prev.at) * 1000;
  if (wallUsec <= 0 || next.cpuUsec < prev.cpuUsec) return 0;
  return (next.cpuUsec - prev.cpuUsec) / wallUsec;
}
