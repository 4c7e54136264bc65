/**
 * What a router test starts is stopped once the test ends, newest first.
 * Apart from support.ts, which the bench imports outside vitest.
 */
import { afterEach } from "vitest";
import { startBackend, type Backend } from "./support";

export type Cleanups = (() => Promise<unknown>)[];

/** The calling file's cleanup list, run after each of its tests. */
export function cleanupsAfterEach(): Cleanups {
  const cleanups: Cleanups = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return cleanups;
}

/** A backend (startBackend) that `cleanups` closes. */
export async function startBackendIn(cleanups: Cleanups, ...args: Parameters<typeof startBackend>): Promise<Backend> {
  const b = await startBackend(...args);
  cleanups.push(() => b.close());
  return b;
}
