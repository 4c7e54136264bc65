/**
 * @module Counting what a request or a scheduler pass asks of D1: round trips
 * (a query or a batch is one), statements, and the time spent waiting on them.
 * Only when the Worker var PROFILE is "1" (benches): the figures go into one
 * log line per request and per pass, to show where the control plane's time
 * goes. Off, the binding is used as it is.
 */

export interface D1Tally {
  roundTrips: number;
  statements: number;
  /** Wall time waiting on D1 (the Workers clock moves at I/O, so this is what it can see). */
  ms: number;
}

export const profiling = (env: { PROFILE?: string }): boolean => env.PROFILE === "1";

export const emptyTally = (): D1Tally => ({ roundTrips: 0, statements: 0, ms: 0 });

const RUNS = new Set(["all", "run", "raw", "first"]);

/** `d1`, counting into `tally`; statements it prepares stay usable in its batches. */
export function tallied(d1: D1Database, tally: D1Tally): D1Database {
  const originals = new WeakMap<object, D1PreparedStatement>();
  const timed = async <T>(statements: number, work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    try {
      return await work();
    } finally {
      tally.roundTrips += 1;
      tally.statements += statements;
      tally.ms += Date.now() - started;
    }
  };
  const wrap = (stmt: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(stmt, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== "function") return value;
        if (prop === "bind") return (...args: unknown[]) => wrap(target.bind(...args));
        if (typeof prop === "string" && RUNS.has(prop)) return (...args: unknown[]) => timed(1, () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
    originals.set(proxy, stmt);
    return proxy;
  };
  return new Proxy(d1, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => wrap(target.prepare(query));
      if (prop === "batch") {
        return (stmts: D1PreparedStatement[]) => timed(stmts.length, () => target.batch(stmts.map((s) => originals.get(s) ?? s)));
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
