/** @module Splitting a list for `IN (…)`: D1 allows 100 bound parameters a statement. */
const PARAMS_PER_STATEMENT = 90;

export function paramChunks<T>(xs: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += PARAMS_PER_STATEMENT) out.push(xs.slice(i, i + PARAMS_PER_STATEMENT));
  return out;
}
