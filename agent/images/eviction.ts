/**
 * @module The garbage-collection decision, pure: which cached layers to
 * delete so the cache fits under its threshold. Least recently used first;
 * a layer some container holds is never chosen (GrootFS's `clean
 * --threshold-bytes`, with LRU order).
 */
export interface CachedLayerInfo {
  key: string;
  sizeBytes: number;
  lastUsedMs: number;
  inUse: boolean;
}

/** Keys to evict, oldest first; none while the total is within `thresholdBytes`. */
export function planEviction(layers: readonly CachedLayerInfo[], thresholdBytes: number): string[] {
  let total = layers.reduce((sum, l) => sum + l.sizeBytes, 0);
  if (total <= thresholdBytes) return [];
  const evict: string[] = [];
  const candidates = layers.filter((l) => !l.inUse).sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.key.localeCompare(b.key));
  for (const l of candidates) {
    if (total <= thresholdBytes) break;
    evict.push(l.key);
    total -= l.sizeBytes;
  }
  return evict;
}
