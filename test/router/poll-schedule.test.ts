import { describe, expect, it } from "vitest";
import { nextPollDelay } from "../../agent/router/poll-schedule";

const schedule = { jitterMs: 200, backoffBaseMs: 500, backoffMaxMs: 30_000 };

describe("nextPollDelay", () => {
  it("re-polls at once, jittered, after an answer or a single cut request", () => {
    expect(nextPollDelay(0, schedule, () => 0)).toBe(0);
    expect(nextPollDelay(0, schedule, () => 0.999)).toBe(199);
    expect(nextPollDelay(1, schedule, () => 0.5)).toBe(100);
  });

  it("backs off exponentially with equal jitter from the second failure, up to the cap", () => {
    expect([2, 3, 4, 5].map((f) => nextPollDelay(f, schedule, () => 0))).toEqual([250, 500, 1000, 2000]);
    expect([2, 3, 4, 5].map((f) => nextPollDelay(f, schedule, () => 0.999))).toEqual([499, 999, 1999, 3998]);
    expect(nextPollDelay(30, schedule, () => 0)).toBe(15_000);
    expect(nextPollDelay(30, schedule, () => 0.999)).toBe(29_985);
  });
});
