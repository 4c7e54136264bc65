import { describe, expect, it } from "vitest";
import { place, type PlacementCell, type PlacementRequest } from "../../shared/convergence/place";

const req = (o: Partial<PlacementRequest> & { key: string }): PlacementRequest => ({
  process_guid: "p1", index: 0, memory_mb: 256, disk_mb: 512, layers: [], ...o,
});
const cell = (o: Partial<PlacementCell> & { guid: string }): PlacementCell => ({
  zone: "z1", capacity: { memory_mb: 4096, disk_mb: 8192, containers: 10 }, allocated: { memory_mb: 0, disk_mb: 0, containers: 0 },
  starting: 0, processes: {}, cached_layers: [], ...o,
});
const where = (p: ReturnType<typeof place>) => Object.fromEntries(p.placed.map((x) => [x.key, x.cell_guid]));

describe("place", () => {
  it("spreads a process's instances across zones before cells", () => {
    const cells = [cell({ guid: "a1", zone: "a" }), cell({ guid: "a2", zone: "a" }), cell({ guid: "b1", zone: "b" })];
    const p = place([0, 1, 2].map((index) => req({ key: `i${index}`, index })), cells);
    expect(new Set([where(p).i0, where(p).i1]).size).toBe(2);
    expect(new Set([where(p).i0, where(p).i1].map((g) => g![0]))).toEqual(new Set(["a", "b"]));
    // The third goes to the empty cell of the zone already holding one instance, not onto b1 again.
    expect(Object.values(where(p)).sort()).toEqual(["a1", "a2", "b1"]);
  });

  it("goes to a more loaded zone when the least loaded one has no room", () => {
    const cells = [cell({ guid: "a1", zone: "a", processes: { p1: 1 } }), cell({ guid: "b1", zone: "b", allocated: { memory_mb: 4000, disk_mb: 0, containers: 1 } })];
    expect(where(place([req({ key: "x", index: 1 })], cells))).toEqual({ x: "a1" });
  });

  it("keeps off a cell to avoid while another fits, even in a more loaded zone", () => {
    const cells = [cell({ guid: "a1", zone: "a" }), cell({ guid: "b1", zone: "b", processes: { p1: 1 } })];
    expect(where(place([req({ key: "x", index: 1 })], cells))).toEqual({ x: "a1" });
    expect(where(place([req({ key: "x", index: 1, avoid: "a1" })], cells))).toEqual({ x: "b1" });
  });

  it("uses the avoided cell when nothing else fits", () => {
    const cells = [cell({ guid: "a1" }), cell({ guid: "full", allocated: { memory_mb: 4096, disk_mb: 0, containers: 1 } })];
    expect(place([req({ key: "x", avoid: "a1" })], cells)).toEqual({ placed: [{ key: "x", cell_guid: "a1" }], failed: [] });
    expect(place([req({ key: "x", avoid: "a1", memory_mb: 8192 })], cells).failed).toEqual([{ key: "x", placement_error: "insufficient resources: memory" }]);
  });

  it("refuses an image whose layers alone are bigger than the disk quota, naming both sizes, on any cell", () => {
    const big = { digest: "sha256:big", size: 300 * 1024 * 1024 };
    const cells = [cell({ guid: "a1" })];
    expect(place([req({ key: "x", disk_mb: 256, layers: [big] })], cells).failed).toEqual([
      { key: "x", placement_error: "insufficient resources: disk: the image's layers are 300.0 MiB, more than the disk quota of 256M (256.0 MiB)" },
    ]);
    expect(where(place([req({ key: "x", disk_mb: 512, layers: [big] })], cells))).toEqual({ x: "a1" });
  });

  it("prefers the emptier cell (Diego's resource score)", () => {
    const cells = [cell({ guid: "full", allocated: { memory_mb: 3000, disk_mb: 6000, containers: 8 } }), cell({ guid: "empty" })];
    expect(where(place([req({ key: "x" })], cells))).toEqual({ x: "empty" });
  });

  it("weighs containers already starting on a cell (0.25 each)", () => {
    const cells = [cell({ guid: "busy", starting: 2 }), cell({ guid: "calm", allocated: { memory_mb: 1024, disk_mb: 2048, containers: 2 } })];
    expect(where(place([req({ key: "x" })], cells))).toEqual({ x: "calm" });
  });

  it("prefers a cell holding the image's layers when otherwise alike", () => {
    const layers = [{ digest: "sha256:aa", size: 900 }, { digest: "sha256:bb", size: 100 }];
    const cells = [cell({ guid: "a" }), cell({ guid: "b", cached_layers: ["sha256:aa"] })];
    expect(where(place([req({ key: "x", layers })], cells))).toEqual({ x: "b" });
  });

  it("never lets cached layers outweigh spreading a process", () => {
    const layers = [{ digest: "sha256:aa", size: 100 }];
    const cells = [cell({ guid: "cached", cached_layers: ["sha256:aa"], processes: { p1: 1 } }), cell({ guid: "cold" })];
    expect(where(place([req({ key: "x", index: 1, layers })], cells))).toEqual({ x: "cold" });
  });

  it("accounts for its own placements within one batch", () => {
    const cells = [cell({ guid: "only", capacity: { memory_mb: 600, disk_mb: 8192, containers: 10 } })];
    const p = place([req({ key: "a", process_guid: "p1" }), req({ key: "b", process_guid: "p2" }), req({ key: "c", process_guid: "p3" })], cells);
    expect(p.placed.map((x) => x.key)).toEqual(["a", "b"]);
    expect(p.failed).toEqual([{ key: "c", placement_error: "insufficient resources: memory" }]);
  });

  it("orders work by index, then by memory, largest first", () => {
    const cells = [cell({ guid: "only", capacity: { memory_mb: 1024, disk_mb: 8192, containers: 10 } })];
    const p = place([req({ key: "small", process_guid: "s", memory_mb: 512 }), req({ key: "big", process_guid: "b", memory_mb: 1024 })], cells);
    expect(p.placed.map((x) => x.key)).toEqual(["big"]);
    expect(p.failed.map((x) => x.key)).toEqual(["small"]);
  });

  it.each([
    ["memory", { memory_mb: 5000 }, "insufficient resources: memory"],
    ["disk", { disk_mb: 9000 }, "insufficient resources: disk"],
    ["memory and disk", { memory_mb: 5000, disk_mb: 9000 }, "insufficient resources: disk, memory"],
  ])("fails with CF's placement error when no cell has enough %s", (_what, asks, error) => {
    expect(place([req({ key: "x", ...asks })], [cell({ guid: "c" })]).failed).toEqual([{ key: "x", placement_error: error }]);
  });

  it("fails with 'containers' when every slot is taken", () => {
    const cells = [cell({ guid: "c", allocated: { memory_mb: 0, disk_mb: 0, containers: 10 } })];
    expect(place([req({ key: "x" })], cells).failed).toEqual([{ key: "x", placement_error: "insufficient resources: containers" }]);
  });

  it("fails with 'found no compatible cell' when no cell takes work", () => {
    expect(place([req({ key: "x" })], []).failed).toEqual([{ key: "x", placement_error: "found no compatible cell" }]);
  });
});
