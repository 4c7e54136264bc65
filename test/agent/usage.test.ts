import { describe, expect, it } from "vitest";
import { cpuFraction } from "../../agent/runtime/usage";

describe("cpuFraction()", () => {
  it.each([
    [{ at: 0, cpuUsec: 0 }, { at: 1000, cpuUsec: 500_000 }, 0.5],
    [{ at: 0, cpuUsec: 0 }, { at: 1000, cpuUsec: 2_000_000 }, 2],
    [{ at: 1000, cpuUsec: 10 }, { at: 1000, cpuUsec: 20 }, 0],
    [{ at: 0, cpuUsec: 20 }, { at: 1000, cpuUsec: 10 }, 0],
  ])("%o → %o is %d cores", (prev, next, want) => expect(cpuFraction(prev, next)).toBe(want));
});
