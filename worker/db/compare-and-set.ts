/**
 * @module Retrying a read-then-conditional-write. D1 has no interactive
 * transactions, so an edit reads, computes, and writes only if nothing changed
 * since the read; whoever loses re-reads. Racers in lockstep would collide again,
 * so each retry waits a random, growing delay.
 */

export interface RetryOptions {
  tries: number;
  /** Upper bound of the random wait before retry n is n × stepMs. */
  stepMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { tries: 12, stepMs: 4 };

/** Calls `attempt` until it returns a value (null = lost the race); throws after `tries` losses. */
export async function retryCompareAndSet<T>(what: string, attempt: () => Promise<T | null>, opts: RetryOptions = DEFAULT_RETRY): Promise<T> {
  for (let n = 1; ; n++) {
    const result = await attempt();
    if (result !== null) return result;
    if (n >= opts.tries) throw new Error(`${what}: gave up after ${n} conflicting updates`);
    await new Promise((resolve) => setTimeout(resolve, Math.random() * n * opts.stepMs));
  }
}
