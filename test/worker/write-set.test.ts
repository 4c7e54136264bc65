/**
 * The scheduling step as a pure function: a snapshot and a plan in, a
 * write-set out. No D1 here; each write must name exactly the cells whose
 * desired set it changes (and routes when routers must hear of it), since the
 * DB layer bumps those versions and nothing else.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_CONVERGENCE_CONFIG } from "../../shared/convergence/config";
import { converge } from "../../shared/convergence/converge";
import type { CellView } from "../../shared/convergence/model";
import type { DesiredRow, InstanceFacts, Snapshot } from "../../worker/scheduling/snapshot";
import { buildInstanceSpec } from "../../worker/scheduling/instance-spec";
import { buildWriteSet, specsNeeded, type WriteOp } from "../../worker/scheduling/write-set";
import { groupWrites } from "../../worker/db/write-set";
import { SYSTEM_ACTOR } from "../../worker/db/audit";
import type { StoredSpec } from "../../worker/scheduling/stored-spec";
import { IMAGE } from "./cell-fixtures";

const NOW = 1_000_000_000;
const C = DEFAULT_CONVERGENCE_CONFIG;
const CAPACITY = { memory_mb: 4096, disk_mb: 8192, containers: 10 };

const cell = (guid: string, zone: string, extra: Partial<CellView> = {}): CellView => ({
  guid, zone, state: "ACTIVE", last_heartbeat_at: NOW - 1000, registered_at: NOW - 60_000, capacity: CAPACITY, cached_layers: [], ...extra,
});

function desiredRow(app: string, instances: number, memory = 256): DesiredRow {
  return {
    process: {
      guid: app, appGuid: app, type: "web", version: "v1", command: null, user: null, instances, memoryInMb: memory, diskInMb: 256,
      logRateLimitInBytesPerSecond: -1, healthCheckType: "port", healthCheckTimeout: null, healthCheckInvocationTimeout: null,
      healthCheckInterval: null, healthCheckEndpoint: null, createdAt: "", updatedAt: "",
    },
    app: { guid: app, name: `name-${app}`, spaceGuid: "space", environmentVariables: "{}" },
    space: { name: "space", organization: null },
    uris: [],
    droplet: { guid: `droplet-${app}`, packageGuid: null, processTypes: { web: "/bin/httpd" }, imageSpec: IMAGE },
    image: IMAGE,
  };
}

function snapshot(opts: { rows?: DesiredRow[]; actual?: InstanceFacts[]; cells?: CellView[]; staging?: Snapshot["stagingBuilds"] }): Snapshot {
  const rows = opts.rows ?? [];
  return {
    desired: {
      diego_docker: true,
      processes: rows.map((r) => ({
        process_guid: r.process.guid, app_guid: r.app.guid, version: r.process.version, instances: r.process.instances,
        memory_mb: r.process.memoryInMb, disk_mb: r.process.diskInMb, lifecycle: "docker" as const, layers: [],
      })),
    },
    rows: new Map(rows.map((r) => [r.process.guid, r])),
    actual: opts.actual ?? [],
    cells: opts.cells ?? [],
    load: new Map(),
    apps: new Map(rows.map((r) => [r.app.guid, { name: r.app.name, spaceGuid: r.app.spaceGuid }])),
    stagingBuilds: opts.staging ?? [],
    registryAccessVersion: 0,
    due: [],
    oldestClaimSince: null,
  };
}

const instance = (guid: string, app: string, index: number, cellGuid: string | null, state: InstanceFacts["state"]): InstanceFacts => ({
  instance_guid: guid, process_guid: app, app_guid: app, index, process_version: "v1", cell_guid: cellGuid, state, presence: "ORDINARY",
  since: NOW - 5000, crash_count: 0, memory_mb: 256, disk_mb: 256, host_port: state === "RUNNING" ? 61000 : null, placement_error: null,
});

function writeSetOf(snap: Snapshot, specs = new Map<string, StoredSpec>()) {
  let n = 0;
  const plan = converge(snap.desired, snap.actual, snap.cells, NOW, C);
  return { plan, ...buildWriteSet({ snap, plan, specs, now: NOW, config: C, newGuid: () => `new-${++n}` }) };
}

const ofKind = <K extends WriteOp["op"]>(writes: WriteOp[], op: K) => writes.filter((w): w is Extract<WriteOp, { op: K }> => w.op === op);

describe("buildWriteSet", () => {
  it("places missing instances across zones, each insert naming its cell, recording one audit event per app and reason", () => {
    const snap = snapshot({ rows: [desiredRow("a", 2)], cells: [cell("c1", "z1"), cell("c2", "z2")] });
    const { writes, outcome } = writeSetOf(snap);
    const inserts = ofKind(writes, "insert");
    expect(inserts.map((w) => [w.row.index, w.row.state, w.row.cellGuid, w.cells])).toEqual([
      [0, "CLAIMED", expect.any(String), [inserts[0]!.row.cellGuid]],
      [1, "CLAIMED", expect.any(String), [inserts[1]!.row.cellGuid]],
    ]);
    expect(new Set(inserts.map((w) => w.row.cellGuid))).toEqual(new Set(["c1", "c2"]));
    expect(inserts.every((w) => !w.routes)).toBe(true);
    expect((inserts[0]!.row.spec as StoredSpec).env.INSTANCE_GUID).toBe(inserts[0]!.row.instanceGuid);
    expect(outcome.placed).toHaveLength(2);
    const audits = ofKind(writes, "audit");
    expect(audits.map((e) => [e.event.type, (e.event.data as { reason: string }).reason])).toEqual([
      ["app.instances_placed", "index 0 of 2 is missing"], ["app.instances_placed", "index 1 of 2 is missing"],
    ]);
    expect(audits[0]!.event).toMatchObject({ target: { guid: "a", type: "app", name: "name-a" }, spaceGuid: "space" });
  });

  it("stops an undesired instance: STOPPING on a live cell (routes move if it ran), forgotten on a dead one", () => {
    const snap = snapshot({
      cells: [cell("live", "z1"), cell("dead", "z1", { state: "LOST", last_heartbeat_at: NOW - 60_000 })],
      actual: [instance("i-live", "gone", 0, "live", "RUNNING"), instance("i-dead", "gone", 1, "dead", "STARTING")],
    });
    const { writes, outcome } = writeSetOf(snap);
    expect(ofKind(writes, "stopping")).toEqual([{ op: "stopping", instance_guid: "i-live", since: NOW, cells: ["live"], routes: true }]);
    expect(ofKind(writes, "forget")).toEqual([{ op: "forget", instance_guid: "i-dead", cells: ["dead"], routes: false }]);
    expect(outcome.stopped.sort()).toEqual(["i-dead", "i-live"]);
  });

  it("marks a silent cell LOST and replaces its running instance elsewhere from the old spec, keeping it as SUSPECT", () => {
    const row = desiredRow("a", 1);
    const old = instance("old", "a", 0, "silent", "RUNNING");
    const built = buildInstanceSpec(row, { instanceGuid: "old", index: 0 }, 0);
    if ("error" in built) throw new Error(built.error);
    const snap = snapshot({
      rows: [row],
      cells: [cell("silent", "z1", { last_heartbeat_at: NOW - 60_000 }), cell("other", "z2")],
      actual: [old],
    });
    const { plan, writes } = writeSetOf(snap, new Map([["old", built.spec]]));
    expect(specsNeeded(plan)).toEqual(["old"]);
    expect(ofKind(writes, "mark_lost")).toEqual([{ op: "mark_lost", cell_guid: "silent", last_heartbeat_at: NOW - 60_000 }]);
    expect(ofKind(writes, "presence")).toEqual([{ op: "presence", instance_guid: "old", presence: "SUSPECT" }]);
    const [insert] = ofKind(writes, "insert");
    expect(insert).toMatchObject({ row: { cellGuid: "other", state: "CLAIMED", index: 0, instanceGuid: "new-1" }, cells: ["other"] });
    // The replacement copies the old snapshot with its own identity.
    expect((insert!.row.spec as StoredSpec).env).toMatchObject({ INSTANCE_GUID: "new-1" });
    expect(ofKind(writes, "audit").map((a) => a.event.type).sort()).toEqual(["app.instance_lost", "app.instances_placed"]);
  });

  it("keeps an unplaceable instance UNCLAIMED with its error, touching no cell, and writes nothing when a retry fails the same way", () => {
    const snap = snapshot({ rows: [desiredRow("big", 1, 8192)], cells: [cell("c1", "z1")] });
    const first = writeSetOf(snap);
    const [insert] = ofKind(first.writes, "insert");
    expect(insert).toMatchObject({ row: { state: "UNCLAIMED", cellGuid: null, placementError: "insufficient resources: memory" } });
    expect(insert!.cells).toBeUndefined();
    const again = writeSetOf(snapshot({
      rows: [desiredRow("big", 1, 8192)], cells: [cell("c1", "z1")],
      actual: [{ ...instance("u", "big", 0, null, "UNCLAIMED"), memory_mb: 8192, placement_error: "insufficient resources: memory" }],
    }), new Map([["u", (insert!.row.spec as StoredSpec)]]));
    expect(again.writes).toEqual([]);
  });

  it("counts what the whole fleet holds on a cell, not only the instances it read", () => {
    const snap = snapshot({ rows: [desiredRow("a", 1, 1024)], cells: [cell("full", "z1"), cell("roomy", "z1")] });
    snap.load.set("full", { allocated: { memory_mb: 3584, disk_mb: 0, containers: 3 }, starting: 0 });
    const { writes } = writeSetOf(snap);
    expect(ofKind(writes, "insert")[0]!.row.cellGuid).toBe("roomy");
  });

  it("hands a cell-staged build to the live cell with the fewest tasks, and moves one whose cell died", () => {
    const snap = snapshot({
      cells: [cell("busy", "z1"), cell("idle", "z1"), cell("dead", "z1", { state: "LOST", last_heartbeat_at: NOW - 60_000 })],
      staging: [{ guid: "b0", cellGuid: "busy" }, { guid: "b1", cellGuid: null }, { guid: "b2", cellGuid: "dead" }],
    });
    const { writes } = writeSetOf(snap);
    expect(ofKind(writes, "assign_staging")).toEqual([
      { op: "assign_staging", build_guid: "b1", cell_guid: "idle", cells: ["idle"] },
      { op: "assign_staging", build_guid: "b2", cell_guid: "busy", cells: ["busy", "dead"] },
    ]);
  });
});

describe("groupWrites (the DB layer's statements, before any D1)", () => {
  const stop = (n: number, since = NOW): WriteOp => ({ op: "stopping", instance_guid: `s${n}`, since, cells: [`c${n % 3}`], routes: n === 5 });
  const forget = (n: number): WriteOp => ({ op: "forget", instance_guid: `f${n}`, cells: ["dead"], routes: false });

  it("gathers a mass stop into a statement per chunk of 90 instances, each naming the cells and routes its writes touched", () => {
    const groups = groupWrites(Array.from({ length: 200 }, (_, n) => stop(n)));
    expect(groups.map((g) => [g.kind, g.kind === "one" ? 1 : g.instance_guids.length])).toEqual([["stopping", 90], ["stopping", 90], ["stopping", 20]]);
    expect(groups.flatMap((g) => (g.kind === "one" ? [] : g.instance_guids))).toEqual(Array.from({ length: 200 }, (_, n) => `s${n}`));
    expect(groups.map((g) => [g.cells.sort(), g.routes])).toEqual([[["c0", "c1", "c2"], true], [["c0", "c1", "c2"], false], [["c0", "c1", "c2"], false]]);
  });

  it("keeps stops of different moments apart, gathers forgets, and leaves every other write alone, in its order, ahead of them", () => {
    const claim: WriteOp = { op: "claim", instance_guid: "k", cell_guid: "c9", since: NOW, cells: ["c9"] };
    const audit: WriteOp = { op: "audit", event: { type: "audit.app.process.crash", actor: SYSTEM_ACTOR, target: { guid: "a", type: "app", name: "a" }, data: {} } };
    const groups = groupWrites([claim, stop(1), forget(1), stop(2, NOW + 1), audit, forget(2), stop(3)]);
    expect(groups.map((g) => (g.kind === "one" ? g.write.op : `${g.kind}:${g.instance_guids.join(",")}`))).toEqual([
      "claim", "audit", "stopping:s1,s3", "stopping:s2", "forget:f1,f2",
    ]);
    expect(groups.find((g) => g.kind === "stopping" && g.instance_guids.includes("s2"))).toMatchObject({ since: NOW + 1, cells: ["c2"] });
    expect(groups[0]).toMatchObject({ cells: ["c9"], routes: false });
    expect(groups[1]).toMatchObject({ cells: [], routes: false });
  });
});
