/**
 * @module Picking a free number (host port, address slot) from a range.
 * Round-robin from the last pick rather than lowest-first, so a number that
 * was just released (a host port a router may still have in its table) is
 * the last to be handed out again.
 */

/**
 * The first number of [min, max] after `after` (wrapping around) that is not
 * in `used`, or undefined when the range is full.
 */
export function pickFree(min: number, max: number, used: ReadonlySet<number>, after: number): number | undefined {
  const size = max - min + 1;
  const start = after >= min && after <= max ? after - min + 1 : 0;
  for (let i = 0; i < size; i++) {
    const n = min + ((start + i) % size);
    if (!used.has(n)) return n;
  }
  return undefined;
}
