import { describe, expect, it } from "vitest";
import { DEFAULT_RESTART_POLICY as P } from "../../shared/convergence/config";
import { crashCountAfterCrash, restartDelayMs, restartDueAt } from "../../shared/convergence/restart-calculator";

const S = 1000;
const M = 60 * S;

describe("restart calculator (Diego's backoff)", () => {
  it.each([
    [1, 0],
    [2, 0],
    [3, 30 * S],
    [4, 1 * M],
    [5, 2 * M],
    [6, 4 * M],
    [7, 8 * M],
    [8, 16 * M],
    [9, 16 * M],
    [50, 16 * M],
    [199, 16 * M],
    [200, null],
    [500, null],
  ])("crash count %i waits %s ms", (count, delay) => {
    expect(restartDelayMs(count, P)).toBe(delay);
  });

  it("dates the restart from the crash", () => {
    expect(restartDueAt({ crash_count: 4, since: 10_000 }, P)).toBe(10_000 + 60_000);
    expect(restartDueAt({ crash_count: 200, since: 10_000 }, P)).toBeNull();
  });

  it.each([
    ["a crash while starting counts on", { crash_count: 2, state: "STARTING", since: 0 }, 10 * M, 3],
    ["a crash after 5 min or less of running counts on", { crash_count: 6, state: "RUNNING", since: 0 }, 5 * M, 7],
    ["a crash after more than 5 min of running counts as the first", { crash_count: 6, state: "RUNNING", since: 0 }, 5 * M + 1, 1],
    ["the first crash ever is 1", { crash_count: 0, state: "CLAIMED", since: 0 }, 1, 1],
  ])("%s", (_name, previous, now, expected) => {
    expect(crashCountAfterCrash(previous, now, P)).toBe(expected);
  });

  it("follows a configured policy", () => {
    const fast = { ...P, backoffBaseMs: 10, backoffCapMs: 35, immediateRestarts: 1, maxRestarts: 5 };
    expect([1, 2, 3, 4, 5].map((n) => restartDelayMs(n, fast))).toEqual([10, 20, 35, 35, null]);
  });
});
