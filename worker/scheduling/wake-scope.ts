/**
 * @module What a wake names: the apps and cells a change touched, or "look at
 * everything" (a flag flip, a registry access edit). The scheduler merges the
 * scopes of the wakes that arrive between two passes; the next pass reads
 * those apps and cells only (Diego's event-driven auctions, with the periodic
 * full convergence as the backstop).
 */

export interface WakeScope {
  apps?: string[];
  cells?: string[];
  full?: boolean;
}

/** The merged scope of the wakes since the last pass. */
export interface PendingScope {
  apps: Set<string>;
  cells: Set<string>;
  full: boolean;
}

export const emptyScope = (): PendingScope => ({ apps: new Set(), cells: new Set(), full: false });

export function mergeScope(into: PendingScope, scope: WakeScope): PendingScope {
  for (const a of scope.apps ?? []) into.apps.add(a);
  for (const c of scope.cells ?? []) into.cells.add(c);
  into.full ||= scope.full === true;
  return into;
}

export const isEmptyScope = (s: PendingScope): boolean => !s.full && s.apps.size === 0 && s.cells.size === 0;
