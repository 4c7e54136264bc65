/**
 * Audit events: the batchable insert and its list query against real D1, and
 * `/v3/audit_events` for admins, members of a space, outsiders, cells, routers
 * and anonymous callers, with CC's filters and ordering.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { auditEvent, listAuditEvents, SYSTEM_ACTOR } from "../../worker/db/audit";
import { DEFAULT_ORGANIZATION_GUID } from "../../worker/db/organizations";
import { spaces } from "../../worker/db/schema";
import { ADMIN, addDeveloper, api, createCell, createRouter, createSpace, createUser, db, unique } from "./support";

let member: { guid: string; token: string };
let outsider: { guid: string; token: string };
let mine: { guid: string; name: string };
let theirs: { guid: string; name: string };
let appGuid: string;
const t0 = new Date("2030-05-01T10:00:00Z");
const at = (s: number) => new Date(t0.getTime() + s * 1000);

beforeAll(async () => {
  member = await createUser({ name: unique("member") });
  outsider = await createUser();
  mine = await createSpace();
  theirs = await createSpace();
  await addDeveloper(member.guid, mine.guid);
  appGuid = crypto.randomUUID();
  const d = db();
  await d.batch([
    auditEvent(d, { type: "audit.app.create", actor: { kind: "user", guid: member.guid, name: "member", admin: false }, target: { guid: appGuid, type: "app", name: "web" }, spaceGuid: mine.guid, data: { request: { name: "web" } }, now: at(1) }),
    auditEvent(d, { type: "app.crash", actor: SYSTEM_ACTOR, target: { guid: appGuid, type: "app", name: "web" }, spaceGuid: mine.guid, data: { index: 0, exit_description: "exited with status 1" }, now: at(2) }),
    auditEvent(d, { type: "audit.app.create", actor: SYSTEM_ACTOR, target: { guid: crypto.randomUUID(), type: "app", name: "other" }, spaceGuid: theirs.guid, data: {}, now: at(3) }),
    auditEvent(d, { type: "audit.feature_flag.update", actor: SYSTEM_ACTOR, target: { guid: "diego_docker", type: "feature_flag", name: "diego_docker" }, data: {}, now: at(4) }),
  ]);
});

const list = async (query: string, token = ADMIN) => {
  const res = await api("GET", `/v3/audit_events${query}`, { token });
  expect(res.status, query).toBe(200);
  return res.json;
};

describe("audit event repository", () => {
  it("an event written in a batch with its change shares its fate", async () => {
    const d = db();
    const name = unique("failing");
    await d.insert(spaces).values({ guid: crypto.randomUUID(), name, organizationGuid: DEFAULT_ORGANIZATION_GUID });
    const target = crypto.randomUUID();
    // The second insert violates the unique space name: the whole batch rolls back.
    await expect(
      d.batch([
        auditEvent(d, { type: "audit.space.create", actor: SYSTEM_ACTOR, target: { guid: target, type: "space", name }, data: {} }),
        d.insert(spaces).values({ guid: crypto.randomUUID(), name, organizationGuid: DEFAULT_ORGANIZATION_GUID }),
      ]),
    ).rejects.toThrow();
    expect((await listAuditEvents(d, { guid: "x", admin: true }, { targetGuids: [target], descending: false, page: 1, perPage: 10 })).total).toBe(0);
  });

  it("stores the actor, target, space and data as given", async () => {
    const { events } = await listAuditEvents(db(), { guid: "x", admin: true }, { types: ["app.crash"], targetGuids: [appGuid], descending: false, page: 1, perPage: 10 });
    expect(events).toEqual([{
      guid: expect.any(String), type: "app.crash",
      actor: { guid: "system", type: "system", name: "berth-scheduler" },
      target: { guid: appGuid, type: "app", name: "web" }, spaceGuid: mine.guid,
      data: { index: 0, exit_description: "exited with status 1" }, createdAt: "2030-05-01T10:00:02Z",
    }]);
  });
});

describe("/v3/audit_events", () => {
  it("admins see every event, in CC's shape", async () => {
    const body = await list(`?target_guids=${appGuid}`);
    expect(body.resources).toHaveLength(2);
    expect(body.resources[0]).toEqual({
      guid: expect.any(String),
      created_at: "2030-05-01T10:00:01Z",
      updated_at: "2030-05-01T10:00:01Z",
      type: "audit.app.create",
      actor: { guid: member.guid, type: "user", name: "member" },
      target: { guid: appGuid, type: "app", name: "web" },
      data: { request: { name: "web" } },
      space: { guid: mine.guid },
      organization: null,
      links: { self: { href: `https://berth.test/v3/audit_events/${body.resources[0].guid}` } },
    });
    expect((await list(`?space_guids=${mine.guid},${theirs.guid}`)).pagination.total_results).toBe(3);
  });

  it("a developer sees only the events of their spaces; outsiders none", async () => {
    const seen = await list("?per_page=100", member.token);
    expect(seen.resources.every((e: any) => e.space?.guid === mine.guid)).toBe(true);
    expect(seen.resources.map((e: any) => e.type)).toEqual(["audit.app.create", "app.crash"]);
    // Asking for another space's events by filter does not widen the view.
    expect((await list(`?space_guids=${theirs.guid}`, member.token)).resources).toEqual([]);
    expect((await list("", outsider.token)).resources).toEqual([]);
  });

  it("filters by type, target and space, and orders by created_at either way", async () => {
    expect((await list(`?types=app.crash&space_guids=${mine.guid}`)).resources.map((e: any) => e.type)).toEqual(["app.crash"]);
    expect((await list(`?types=audit.app.create,app.crash&space_guids=${mine.guid},${theirs.guid}`)).pagination.total_results).toBe(3);
    const newest = await list(`?space_guids=${mine.guid},${theirs.guid}&order_by=-created_at&per_page=2`);
    expect(newest.resources.map((e: any) => e.created_at)).toEqual(["2030-05-01T10:00:03Z", "2030-05-01T10:00:02Z"]);
    expect(newest.pagination).toMatchObject({ total_results: 3, total_pages: 2 });
    const next = new URL(newest.pagination.next.href);
    expect((await list(next.search)).resources.map((e: any) => e.created_at)).toEqual(["2030-05-01T10:00:01Z"]);
  });

  it("reads one event; invisible or unknown ones are 404", async () => {
    const [event] = (await list(`?types=app.crash&target_guids=${appGuid}`)).resources;
    expect((await api("GET", `/v3/audit_events/${event.guid}`, { token: member.token })).json.guid).toBe(event.guid);
    const hidden = await api("GET", `/v3/audit_events/${event.guid}`, { token: outsider.token });
    expect(hidden.status).toBe(404);
    expect(hidden.json.errors[0]).toEqual({ code: 10010, title: "CF-ResourceNotFound", detail: "Event not found" });
    expect((await api("GET", `/v3/audit_events/${crypto.randomUUID()}`, { token: ADMIN })).status).toBe(404);
  });

  it("rejects bad queries with a 422 naming the parameter", async () => {
    for (const [q, text] of [["order_by=type", "order_by:"], ["types=", "types:"], ["colour=red", "'colour'"], ["per_page=abc", "per_page:"], [`target_guids=${Array.from({ length: 51 }, (_, i) => `g${i}`).join(",")}`, "target_guids:"]]) {
      const res = await api("GET", `/v3/audit_events?${q}`, { token: ADMIN });
      expect(res.status, q).toBe(422);
      expect(res.json.errors[0].detail).toContain(text);
    }
  });

  it("role matrix: cells and routers 403, no token 401, bad token 401", async () => {
    const cell = await createCell();
    const router = await createRouter();
    for (const token of [cell.token, router.token]) expect((await api("GET", "/v3/audit_events", { token })).json.errors[0].code).toBe(10003);
    expect((await api("GET", "/v3/audit_events")).json.errors[0].code).toBe(10002);
    expect((await api("GET", "/v3/audit_events", { token: "bu_x" })).json.errors[0].code).toBe(1000);
  });
});
