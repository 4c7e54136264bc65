/**
 * @module The control plane's own stalls: intervals in which it could not have
 * taken a heartbeat in time (its alarm fired late, a pass held D1). A cell's
 * silence counts only the time outside them, so a slow control plane never
 * makes a cell LOST (Kubernetes' node lifecycle controller judges nodes by
 * when it observed them; Diego's BBS converges only on what it observed).
 */

/** What the control plane knows of itself: its stalls and when it last marked a cell LOST (null: not since it started). */
export interface ControlPlaneHistory {
  stalls: readonly Stall[];
  lastLostAt: number | null;
}

export const NO_HISTORY: ControlPlaneHistory = { stalls: [], lastLostAt: null };

/** [from, to) in ms since the epoch. */
export interface Stall {
  from: number;
  to: number;
}

/**
 * The part of [start, end) beyond `slackMs`, or null: what a pass or a late
 * alarm cost heartbeats beyond the ordinary.
 */
export function stallOf(start: number, end: number, slackMs: number): Stall | null {
  return end - start > slackMs ? { from: start + slackMs, to: end } : null;
}

/** How much of [from, to) the stalls cover (overlapping stalls counted once). */
export function stalledWithin(stalls: readonly Stall[], from: number, to: number): number {
  const parts = stalls
    .map((s) => ({ from: Math.max(s.from, from), to: Math.min(s.to, to) }))
    .filter((s) => s.to > s.from)
    .sort((a, b) => a.from - b.from);
  let total = 0;
  let reach = -Infinity;
  for (const s of parts) {
    const start = Math.max(s.from, reach);
    if (s.to > start) total += s.to - start;
    reach = Math.max(reach, s.to);
  }
  return total;
}

/**
 * `stalls` plus `stall`, overlapping ones merged (concurrent heartbeats report
 * one congestion many times: the list stays as short as the distinct stalls),
 * forgetting those that ended before `now - horizonMs`. Sorted by start.
 */
export function recordStall(stalls: readonly Stall[], stall: Stall | null, now: number, horizonMs: number): Stall[] {
  const all = [...stalls, ...(stall === null ? [] : [stall])].filter((s) => s.to >= now - horizonMs).sort((a, b) => a.from - b.from);
  const merged: Stall[] = [];
  for (const s of all) {
    const last = merged[merged.length - 1];
    if (last && s.from <= last.to) last.to = Math.max(last.to, s.to);
    else merged.push({ ...s });
  }
  return merged;
}
