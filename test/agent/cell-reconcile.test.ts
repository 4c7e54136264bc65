import { describe, expect, it } from "vitest";
import { nextHeartbeatDelay, retryDelay } from "../../agent/cell/backoff";
import { reconcile, withoutCredentials } from "../../agent/cell/reconcile";
import { makeSpec } from "../support/specs";

describe("reconcile()", () => {
  const a = makeSpec({ index: 0 });
  const b = makeSpec({ index: 1 });
  const running = (...specs: ReturnType<typeof makeSpec>[]) => new Map(specs.map((s) => [s.instance_guid, s]));

  it("starts what is missing and stops what is not wanted", () => {
    const c = makeSpec({ index: 2 });
    expect(reconcile([a, c], running(a, b))).toEqual({ start: [c], stop: [b.instance_guid], unknown: [] });
  });

  it("an empty desired set stops everything (a 204 never reaches here)", () => {
    expect(reconcile([], running(a, b))).toEqual({ start: [], stop: [a.instance_guid, b.instance_guid], unknown: [] });
  });

  it("the same set changes nothing", () => {
    expect(reconcile([a, b], running(a, b))).toEqual({ start: [], stop: [], unknown: [] });
  });

  it("a reference (specs=new) keeps the instance it names running as it is; one to an instance the cell does not run is unknown, never started", () => {
    const ref = (s: typeof a) => ({ instance_guid: s.instance_guid, process_guid: s.process_guid, index: s.index, taken: true as const });
    const c = makeSpec({ index: 2 });
    const d = makeSpec({ index: 3 });
    expect(reconcile([ref(a), c, ref(d)], running(a, b))).toEqual({ start: [c], stop: [b.instance_guid], unknown: [d.instance_guid] });
  });

  it("a spec re-adopted from disk (no pull credentials kept) is not replaced by the same spec with them", () => {
    const withCreds = { ...a, image: { ...a.image, credentials: { username: "u", password: "p" } } };
    expect(reconcile([withCreds, b], running(withoutCredentials(withCreds), b))).toEqual({ start: [], stop: [], unknown: [] });
  });

  it("a changed spec under the same guid is replaced; the others are untouched", () => {
    const a2 = { ...a, env: { ...a.env, NEW: "1" } };
    expect(reconcile([a2, b], running(a, b))).toEqual({ start: [a2], stop: [a.instance_guid], unknown: [] });
  });
});

describe("retryDelay()", () => {
  const cfg = { baseMs: 100, maxMs: 2000 };
  it.each([
    [0, 0, 50], [0, 1, 100], [1, 0, 100], [3, 1, 800], [10, 1, 2000], [10, 0, 1000],
  ])("attempt %d with random %d waits %d ms", (attempt, r, ms) => {
    expect(retryDelay(attempt, cfg, () => r)).toBe(ms);
  });
});

describe("nextHeartbeatDelay()", () => {
  it("keeps beats an interval apart start to start, whatever the request took", () => {
    expect(nextHeartbeatDelay(1000, 1200, 5000, 0)).toBe(4800);
    expect(nextHeartbeatDelay(1000, 5500, 5000, 0)).toBe(500);
    expect(nextHeartbeatDelay(1000, 7000, 5000, 0)).toBe(0);
  });

  it("sends a failed beat again sooner: a quarter interval, doubling to one, jittered", () => {
    expect([1, 2, 3, 4].map((n) => nextHeartbeatDelay(1000, 4000, 5000, n, () => 1))).toEqual([1250, 2500, 5000, 5000]);
    expect(nextHeartbeatDelay(1000, 4000, 5000, 1, () => 0)).toBe(625);
  });

  it("never waits longer than an interval when the wall clock stepped back during a beat", () => {
    // now < startedAt: an NTP step of an hour must not silence the cell for an hour (it would go LOST).
    expect(nextHeartbeatDelay(3_600_000 + 1000, 1200, 5000, 0)).toBe(5000);
  });
});
