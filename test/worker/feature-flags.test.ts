/**
 * Feature flags: the repository functions against the real local D1, then the
 * /v3/feature_flags endpoints through the Worker, for every role.
 */
import { describe, expect, it } from "vitest";
import { CfError } from "../../worker/errors";
import { DEFAULT_FLAGS, flagUpdateStatements, getFlag, listFlags, requireFeatureEnabled, updateFlag, applyFlagChange } from "../../worker/db/feature-flags";
import { listAuditEvents, SYSTEM_ACTOR } from "../../worker/db/audit";
import { db } from "./support";

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
    const { before, after } = await updateFlag(db(), "diego_cnb", { enabled: true }, admin, now);
    expect(before.updatedAt).toBeNull();
    expect(after).toEqual({ name: "diego_cnb", enabled: true, customErrorMessage: null, updatedAt: "2026-01-02T03:04:05Z" });
    await updateFlag(db(), "diego_cnb", { enabled: false, customErrorMessage: "no" }, SYSTEM_ACTOR, now);
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
    await updateFlag(db(), "task_creation", { enabled: false }, admin, now);
    // Insert path lost the race: a row exists although `stale` had none.
    const [w1] = await db().batch(flagUpdateStatements(db(), stale, applyFlagChange(stale, { customErrorMessage: "x" }, now), admin, now));
    expect(w1.meta.changes).toBe(0);
    // Update path lost the race: the row changed since it was read.
    const read = await getFlag(db(), "task_creation");
    await updateFlag(db(), "task_creation", { enabled: true }, admin, new Date(now.getTime() + 2000));
    const [w2] = await db().batch(flagUpdateStatements(db(), read, applyFlagChange(read, { customErrorMessage: "y" }, now), admin, now));
    expect(w2.meta.changes).toBe(0);
    expect((await events("task_creation")).total).toBe(2);
    expect(await getFlag(db(), "task_creation")).toMatchObject({ enabled: true, customErrorMessage: null });
  });
});
