/**
 * Feature flags: the repository functions against the real local D1, then the
 * /v3/feature_flags endpoints through the Worker, for every role.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { CfError } from "../../worker/errors";
import { DEFAULT_FLAGS, flagUpdateStatements, getFlag, listFlags, requireFeatureEnabled, updateFlag, applyFlagChange } from "../../worker/db/feature-flags";
import { listAuditEvents, SYSTEM_ACTOR } from "../../worker/db/audit";
import { retryCompareAndSet } from "../../worker/db/compare-and-set";
import { requestRecordingWakes, requestWithScheduler, unreachableScheduler } from "./scheduler-spy";
import { ADMIN, addDeveloper, api, createCell, createRouter, createSpace, createUser, db } from "./support";

const admin = { guid: "a-1", type: "user", name: "alice" } as const;
const events = (name: string) =>
  listAuditEvents(db(), { guid: "a-1", admin: true }, { targetGuids: [name], descending: false, page: 1, perPage: 50 });

describe("feature flag repository", () => {
  it("answers CF's defaults while no row exists", async () => {
    const flag = await getFlag(db(), "diego_docker");
    expect(flag).toEqual({ name: "diego_docker", enabled: false, customErrorMessage: null, updatedAt: null });
    expect((await getFlag(db(), "app_scaling")).enabled).toBe(true);
    expect((await getFlag(db(), "user_org_creation")).enabled).toBe(false);
    const all = await listFlags(db());
    expect(all.map((f) => f.name)).toEqual(Object.keys(DEFAULT_FLAGS).sort());
  });

  it("requireFeatureEnabled throws CF-FeatureDisabled with the name, then the custom message", async () => {
    const err = await requireFeatureEnabled(db(), "route_sharing").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CfError);
    expect((err as CfError).toJSON()).toEqual({ errors: [{ code: 330002, title: "CF-FeatureDisabled", detail: "Feature Disabled: route_sharing" }] });
    expect((err as CfError).status).toBe(403);
    await updateFlag(db(), "route_sharing", { customErrorMessage: "ask your operator" }, admin);
    const err2 = (await requireFeatureEnabled(db(), "route_sharing").catch((e: unknown) => e)) as CfError;
    expect(err2.detail).toBe("Feature Disabled: ask your operator");
    await updateFlag(db(), "route_sharing", { enabled: true }, admin);
    await expect(requireFeatureEnabled(db(), "route_sharing")).resolves.toBeUndefined();
  });

  it("records old → new for each change, with the actor", async () => {
    const now = new Date("2026-01-02T03:04:05.678Z");
    const { before, after } = await updateFlag(db(), "diego_cnb", { enabled: true }, admin, () => now);
    expect(before.updatedAt).toBeNull();
    expect(after).toEqual({ name: "diego_cnb", enabled: true, customErrorMessage: null, updatedAt: "2026-01-02T03:04:05Z" });
    await updateFlag(db(), "diego_cnb", { enabled: false, customErrorMessage: "no" }, SYSTEM_ACTOR, () => now);
    const { total, events: list } = await events("diego_cnb");
    expect(total).toBe(2);
    expect(list[0]).toMatchObject({
      type: "audit.feature_flag.update",
      actor: admin,
      target: { guid: "diego_cnb", type: "feature_flag", name: "diego_cnb" },
      spaceGuid: null,
      createdAt: "2026-01-02T03:04:05Z",
      data: { old: { enabled: false, custom_error_message: null }, new: { enabled: true, custom_error_message: null } },
    });
    expect(list[1]!.data).toEqual({ old: { enabled: true, custom_error_message: null }, new: { enabled: false, custom_error_message: "no" } });
  });

  it("a stale compare-and-set writes nothing and records no event", async () => {
    const now = new Date();
    const stale = await getFlag(db(), "task_creation");
    await updateFlag(db(), "task_creation", { enabled: false }, admin, () => now);
    // Insert path lost the race: a row exists although `stale` had none.
    const [w1] = await db().batch(flagUpdateStatements(db(), stale, applyFlagChange(stale, { customErrorMessage: "x" }, now), admin, now));
    expect(w1.meta.changes).toBe(0);
    // Update path lost the race: the row changed since it was read.
    const read = await getFlag(db(), "task_creation");
    await updateFlag(db(), "task_creation", { enabled: true }, admin, () => new Date(now.getTime() + 2000));
    const [w2] = await db().batch(flagUpdateStatements(db(), read, applyFlagChange(read, { customErrorMessage: "y" }, now), admin, now));
    expect(w2.meta.changes).toBe(0);
    expect((await events("task_creation")).total).toBe(2);
    expect(await getFlag(db(), "task_creation")).toMatchObject({ enabled: true, customErrorMessage: null });
  });
});

describe("retryCompareAndSet", () => {
  it("retries lost races and gives up after the configured tries", async () => {
    let calls = 0;
    await expect(retryCompareAndSet("thing", async () => (++calls < 3 ? null : "won"), { tries: 3, stepMs: 0 })).resolves.toBe("won");
    expect(calls).toBe(3);
    await expect(retryCompareAndSet("thing", async () => null, { tries: 2, stepMs: 0 })).rejects.toThrow("thing: gave up after 2 conflicting updates");
  });
});

describe("/v3/feature_flags", () => {
  let member: { guid: string; token: string };
  let cell: { token: string };
  let router: { token: string };
  beforeAll(async () => {
    member = await createUser();
    const space = await createSpace();
    await addDeveloper(member.guid, space.guid);
    cell = await createCell();
    router = await createRouter();
  });

  it("lists every default flag, paginated, for any user", async () => {
    const outsider = await createUser();
    for (const token of [ADMIN, member.token, outsider.token]) {
      const res = await api("GET", "/v3/feature_flags?per_page=5", { token });
      expect(res.status).toBe(200);
      const total = Object.keys(DEFAULT_FLAGS).length;
      expect(res.json.pagination).toMatchObject({ total_results: total, total_pages: Math.ceil(total / 5), previous: null });
      expect(res.json.pagination.next.href).toBe("https://berth.test/v3/feature_flags?per_page=5&page=2");
      expect(res.json.resources.map((f: any) => f.name)).toEqual(Object.keys(DEFAULT_FLAGS).sort().slice(0, 5));
    }
    const all = await api("GET", "/v3/feature_flags?per_page=100&order_by=-name", { token: member.token });
    expect(all.json.resources.map((f: any) => f.name)).toEqual(Object.keys(DEFAULT_FLAGS).sort().reverse());
    const docker = all.json.resources.find((f: any) => f.name === "diego_docker");
    expect(docker).toEqual({
      name: "diego_docker", enabled: false, updated_at: null, custom_error_message: null,
      links: { self: { href: "https://berth.test/v3/feature_flags/diego_docker" } },
    });
  });

  it("rejects bad list queries", async () => {
    for (const q of ["order_by=enabled", "per_page=0", "updated_ats=2020", "page=-1"]) {
      expect((await api("GET", `/v3/feature_flags?${q}`, { token: ADMIN })).status, q).toBe(422);
    }
  });

  it("reads one flag; an unknown name is 404", async () => {
    const res = await api("GET", "/v3/feature_flags/app_scaling", { token: member.token });
    expect(res.json).toMatchObject({ name: "app_scaling", enabled: true, updated_at: null });
    const unknown = await api("GET", "/v3/feature_flags/warp_drive", { token: member.token });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual({ errors: [{ code: 10010, title: "CF-ResourceNotFound", detail: "Feature flag not found" }] });
    expect((await api("GET", "/v3/feature_flags/toString", { token: ADMIN })).status).toBe(404);
  });

  it("role matrix: cells and routers 403, no token 401, bad token 401", async () => {
    for (const path of ["/v3/feature_flags", "/v3/feature_flags/diego_docker"]) {
      for (const token of [cell.token, router.token]) {
        expect((await api("GET", path, { token })).json.errors[0].code).toBe(10003);
      }
      expect((await api("GET", path)).json.errors[0].code).toBe(10002);
      expect((await api("GET", path, { token: "bu_unknown" })).json.errors[0].code).toBe(1000);
    }
    for (const token of [member.token, cell.token, router.token]) {
      const res = await api("PATCH", "/v3/feature_flags/diego_docker", { token, body: { enabled: true } });
      expect(res.status).toBe(403);
      expect(res.json.errors[0].title).toBe("CF-NotAuthorized");
    }
    expect((await api("PATCH", "/v3/feature_flags/diego_docker", { body: { enabled: true } })).status).toBe(401);
    expect((await getFlag(db(), "diego_docker")).enabled).toBe(false);
  });

  it("an admin flips diego_docker: the scheduler is woken and the change audited", async () => {
    const on = await requestRecordingWakes("PATCH", "/v3/feature_flags/diego_docker", ADMIN, { enabled: true });
    expect(on.status).toBe(200);
    expect(on.json).toMatchObject({ name: "diego_docker", enabled: true, custom_error_message: null });
    expect(on.json.updated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(on.reasons).toEqual(["feature_flag"]);
    await expect(requireFeatureEnabled(db(), "diego_docker")).resolves.toBeUndefined();

    // Same value again, or only the message: nothing to converge, no wake-up.
    expect((await requestRecordingWakes("PATCH", "/v3/feature_flags/diego_docker", ADMIN, { enabled: true })).reasons).toEqual([]);
    const msg = await requestRecordingWakes("PATCH", "/v3/feature_flags/diego_docker", ADMIN, { custom_error_message: "Docker is paused" });
    expect(msg.reasons).toEqual([]);
    // Other flags never wake the scheduler.
    expect((await requestRecordingWakes("PATCH", "/v3/feature_flags/route_sharing", ADMIN, { enabled: true })).reasons).toEqual([]);

    const off = await requestRecordingWakes("PATCH", "/v3/feature_flags/diego_docker", ADMIN, { enabled: false });
    expect(off.reasons).toEqual(["feature_flag"]);
    expect(off.json.custom_error_message).toBe("Docker is paused");
    const err = (await requireFeatureEnabled(db(), "diego_docker").catch((e: unknown) => e)) as CfError;
    expect(err.toJSON().errors[0]).toEqual({ code: 330002, title: "CF-FeatureDisabled", detail: "Feature Disabled: Docker is paused" });

    const events = await api("GET", "/v3/audit_events?types=audit.feature_flag.update&target_guids=diego_docker", { token: ADMIN });
    expect(events.json.resources.map((e: any) => [e.data.old.enabled, e.data.new.enabled])).toEqual([[false, true], [true, true], [true, true], [true, false]]);
    expect(events.json.resources[0]).toMatchObject({ actor: { guid: "admin", type: "user", name: "admin" }, space: null });
    // Flag events have no space: developers never see them.
    expect((await api("GET", "/v3/audit_events?types=audit.feature_flag.update", { token: member.token })).json.resources).toEqual([]);
  });

  it("a scheduler that cannot be reached does not undo or fail a committed flip", async () => {
    const res = await requestWithScheduler(unreachableScheduler(), "PATCH", "/v3/feature_flags/diego_docker", ADMIN, { enabled: true });
    expect(res.status).toBe(200);
    expect(res.json.enabled).toBe(true);
    expect((await getFlag(db(), "diego_docker")).enabled).toBe(true);
    await api("PATCH", "/v3/feature_flags/diego_docker", { token: ADMIN, body: { enabled: false } });
  });

  it("concurrent PATCHes are all recorded with the true previous value", async () => {
    const messages = Array.from({ length: 6 }, (_, i) => `message ${i}`);
    const results = await Promise.all(messages.map((m) => api("PATCH", "/v3/feature_flags/resource_matching", { token: ADMIN, body: { custom_error_message: m } })));
    expect(results.map((r) => r.status)).toEqual(Array(6).fill(200));
    const events = await api("GET", "/v3/audit_events?types=audit.feature_flag.update&target_guids=resource_matching", { token: ADMIN });
    const data = events.json.resources.map((e: any) => e.data);
    expect(data).toHaveLength(6);
    // Each event's "old" is the previous event's "new": no two edits saw the same state.
    expect(data[0].old.custom_error_message).toBeNull();
    for (let i = 1; i < data.length; i++) expect(data[i].old).toEqual(data[i - 1].new);
    expect((await getFlag(db(), "resource_matching")).customErrorMessage).toBe(data[5].new.custom_error_message);
  });

  it("an edit that lost the race and retried is listed after the one that won: its event takes the time of its own attempt", async () => {
    // Each reading of the clock a second later than the one before, so every event's time is its own.
    let tick = Date.UTC(2026, 11, 7, 12, 0, 0);
    const clock = () => new Date((tick += 1000));
    const messages = Array.from({ length: 6 }, (_, i) => `race ${i}`);
    await Promise.all(messages.map((m) => updateFlag(db(), "service_instance_sharing", { customErrorMessage: m }, admin, clock)));
    const { events: list } = await events("service_instance_sharing");
    const data = list.map((e) => e.data as { old: { custom_error_message: string | null }; new: { custom_error_message: string | null } });
    expect(data).toHaveLength(6);
    expect(data[0]!.old.custom_error_message).toBeNull();
    for (let i = 1; i < data.length; i++) expect(data[i]!.old).toEqual(data[i - 1]!.new);
  });

  it("custom_error_message: 1..250 characters, or null to clear", async () => {
    const ok = await api("PATCH", "/v3/feature_flags/diego_cnb", { token: ADMIN, body: { custom_error_message: "m".repeat(250) } });
    expect(ok.status).toBe(200);
    expect(ok.json.custom_error_message).toHaveLength(250);
    const cleared = await api("PATCH", "/v3/feature_flags/diego_cnb", { token: ADMIN, body: { custom_error_message: null } });
    expect(cleared.json.custom_error_message).toBeNull();
    for (const [body, text] of [
      [{ custom_error_message: "" }, "custom_error_message:"],
      [{ custom_error_message: "m".repeat(251) }, "custom_error_message:"],
      [{ custom_error_message: 5 }, "custom_error_message:"],
      [{ enabled: "true" }, "enabled:"],
      [{ enabled: null }, "enabled:"],
      [{ enabled: true, name: "diego_cnb" }, "Unknown field(s): 'name'"],
      [[true], "expected object"],
    ] as const) {
      const res = await api("PATCH", "/v3/feature_flags/diego_cnb", { token: ADMIN, body });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.json.errors[0].detail).toContain(text);
    }
  });

  it("an empty PATCH changes nothing; unknown flags are 404 before the body is read", async () => {
    const before = await api("GET", "/v3/feature_flags/hash_based_routing", { token: ADMIN });
    const res = await api("PATCH", "/v3/feature_flags/hash_based_routing", { token: ADMIN, body: {} });
    expect(res.json).toEqual(before.json);
    expect(res.json.updated_at).toBeNull();
    expect((await api("PATCH", "/v3/feature_flags/warp_drive", { token: ADMIN, body: { bogus: 1 } })).status).toBe(404);
    const malformed = await api("PATCH", "/v3/feature_flags/diego_docker", { token: ADMIN, raw: "{enabled:true}" });
    expect(malformed.status).toBe(400);
    expect(malformed.json.errors[0].title).toBe("CF-MessageParseError");
  });
});
