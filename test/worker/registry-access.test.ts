/**
 * Registry access through the Worker and its repository against real D1:
 * validation of every entry kind, canonical storage, version bumps with a
 * compare-and-set, audit events, the scheduler wake-up and the role matrix.
 */
import { describe, expect, it } from "vitest";
import { getRegistryAccess, getRegistryAccessRecord, registryAccessUpdateStatements } from "../../worker/db/registry-access";
import caA from "./fixtures/registry-ca-a.pem?raw";
import caB from "./fixtures/registry-ca-b.pem?raw";
import { requestRecordingWakes, requestWithScheduler, unreachableScheduler } from "./scheduler-spy";
import { ADMIN, addDeveloper, api, createCell, createRouter, createSpace, createUser, db } from "./support";

const PATH = "/v3/admin/docker_registry_access";
const detail = (res: { json: any }) => res.json.errors[0].detail as string;
const patch = (body: unknown, token = ADMIN) => api("PATCH", PATH, { token, body });

const patchCounting = (body: unknown) => requestRecordingWakes("PATCH", PATH, ADMIN, body);

describe("registry access", () => {
  it("starts empty at version 0 with no updated_at", async () => {
    const res = await api("GET", PATH, { token: ADMIN });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      version: 0, trusted_ca_certificates: [], insecure_registries: [], cell_only_registries: [], updated_at: null,
      links: { self: { href: `https://berth.test${PATH}` } },
    });
  });

  it("stores valid entries canonically, bumps the version, audits and wakes the scheduler", async () => {
    const before = (await getRegistryAccess(db())).version;
    const res = await patchCounting({
      trusted_ca_certificates: [`\n${caA.replace(/\n/g, "\r\n")}\n`, caB],
      insecure_registries: ["Registry.Local:5000", "10.0.0.5", "10.0.0.0/8", "[::1]:5000", "FD00:0:0::1", "fd00::/8", "192.168.1.7:443", "10.0.0.5", "[fd00::2]"],
      cell_only_registries: ["internal.example:5443", "[2001:db8::1]:5000"],
    });
    expect(res.status).toBe(200);
    expect(res.json.version).toBe(before + 1);
    expect(res.json.updated_at).toMatch(/Z$/);
    expect(res.json.trusted_ca_certificates).toEqual([caA.trim(), caB.trim()]);
    expect(res.json.insecure_registries).toEqual(["registry.local:5000", "10.0.0.5", "10.0.0.0/8", "[::1]:5000", "fd00::1", "fd00::/8", "192.168.1.7:443", "fd00::2"]);
    expect(res.json.cell_only_registries).toEqual(["internal.example:5443", "[2001:db8::1]:5000"]);
    expect(res.reasons).toEqual(["registry_access"]);
    expect(await getRegistryAccess(db())).toEqual({
      version: before + 1,
      trusted_ca_certificates: res.json.trusted_ca_certificates,
      insecure_registries: res.json.insecure_registries,
      cell_only_registries: res.json.cell_only_registries,
    });
    const events = await api("GET", "/v3/audit_events?types=audit.docker_registry_access.update&order_by=-created_at&per_page=1", { token: ADMIN });
    expect(events.json.resources[0]).toMatchObject({
      actor: { guid: "admin", type: "user" },
      target: { type: "docker_registry_access" },
      data: { old: { version: before }, new: { version: before + 1, insecure_registries: res.json.insecure_registries } },
    });
    expect(events.json.resources[0].data.new.trusted_ca_certificates).toEqual([expect.stringMatching(/^sha256:[0-9a-f]{64}$/), expect.stringMatching(/^sha256:/)]);
  });

  it("a partial edit keeps the other lists and bumps the version again", async () => {
    const before = await getRegistryAccess(db());
    const res = await patch({ cell_only_registries: [] });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ version: before.version + 1, insecure_registries: before.insecure_registries, trusted_ca_certificates: before.trusted_ca_certificates, cell_only_registries: [] });
  });

  it("a scheduler that cannot be reached does not fail a committed edit", async () => {
    const before = (await getRegistryAccess(db())).version;
    const res = await requestWithScheduler(unreachableScheduler(), "PATCH", PATH, ADMIN, { cell_only_registries: ["cells.internal:5000"] });
    expect(res.status).toBe(200);
    expect((await getRegistryAccess(db())).version).toBe(before + 1);
  });

  it("an empty body changes nothing and wakes nobody", async () => {
    const before = await getRegistryAccessRecord(db());
    const res = await patchCounting({});
    expect(res.status).toBe(200);
    expect(res.json.version).toBe(before.access.version);
    expect(res.json.updated_at).toBe(before.updatedAt);
    expect(res.reasons).toEqual([]);
  });

  it("an edit based on a stale version writes nothing and records no event", async () => {
    const stale = await getRegistryAccess(db());
    await patch({ insecure_registries: ["10.9.9.9"] });
    const count = async () => (await api("GET", "/v3/audit_events?types=audit.docker_registry_access.update", { token: ADMIN })).json.pagination.total_results;
    const events = await count();
    const [write] = await db().batch(await registryAccessUpdateStatements(db(), stale, { ...stale, insecure_registries: ["1.1.1.1"] }, { guid: "x", type: "user", name: "x" }, new Date()));
    expect(write.meta.changes).toBe(0);
    expect((await getRegistryAccess(db())).insecure_registries).toEqual(["10.9.9.9"]);
    expect(await count()).toBe(events);
  });

  it("concurrent edits each get their own version; the audit trail is an unbroken chain", async () => {
    const before = (await getRegistryAccess(db())).version;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => patch({ insecure_registries: [`10.8.0.${i}`] })));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(results.map((r) => r.json.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 8 }, (_, i) => before + 1 + i));
    const after = await getRegistryAccess(db());
    expect(after.version).toBe(before + 8);
    const events = await api("GET", "/v3/audit_events?types=audit.docker_registry_access.update&order_by=-created_at&per_page=8", { token: ADMIN });
    const chain = events.json.resources.map((e: any) => e.data).sort((a: any, b: any) => a.new.version - b.new.version);
    chain.forEach((d: any, i: number) => {
      expect(d.old.version).toBe(before + i);
      expect(d.new.version).toBe(before + i + 1);
      if (i > 0) expect(d.old.insecure_registries).toEqual(chain[i - 1].new.insecure_registries);
    });
    expect(chain[7].new.insecure_registries).toEqual(after.insecure_registries);
  });

  const certCases: [string, unknown, string][] = [
    ["not PEM", "hello", "trusted_ca_certificates.0: is not a PEM block"],
    ["a private key", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", "is a PEM 'PRIVATE KEY' block, not a CERTIFICATE"],
    ["two certificates in one entry", `${caA}${caB}`, "holds 2 PEM blocks"],
    ["text around the block", `subject=foo\n${caA}`, "nothing around it"],
    ["bad base64", "-----BEGIN CERTIFICATE-----\nMII*\n-----END CERTIFICATE-----", "not valid base64"],
    ["base64 of non-DER", `-----BEGIN CERTIFICATE-----\n${btoa("definitely not a certificate")}\n-----END CERTIFICATE-----`, "is not an X.509 certificate"],
    ["a truncated certificate", truncate(caA), "is not an X.509 certificate"],
    ["not a string", 42, "trusted_ca_certificates.0:"],
  ];
  it.each(certCases)("rejects a certificate that is %s", async (_, cert, text) => {
    const before = (await getRegistryAccess(db())).version;
    const res = await patch({ trusted_ca_certificates: [caA, cert].reverse() });
    expect(res.status).toBe(422);
    expect(detail(res)).toContain(text);
    expect(detail(res)).not.toContain("MIIB\n");
    expect((await getRegistryAccess(db())).version).toBe(before);
  });

  const entryCases: [string, string, string][] = [
    ["insecure_registries", "https://reg.example:5000", "must not have a scheme"],
    ["insecure_registries", "reg.example", "is not host:port"],
    ["insecure_registries", "reg.example:0", "invalid port"],
    ["insecure_registries", "reg.example:70000", "invalid port"],
    ["insecure_registries", "reg_example:5000", "invalid host name"],
    ["insecure_registries", "010.0.0.1", "is not host:port"],
    ["insecure_registries", "10.0.0.256", "is not host:port"],
    ["insecure_registries", "10.0.0.1/33", "invalid prefix length (0-32)"],
    ["insecure_registries", "10.0.0.1/8", "host bits set; did you mean 10.0.0.0/8?"],
    ["insecure_registries", "fd00::1/8", "did you mean fd00::/8?"],
    ["insecure_registries", "1::2::3", "is not host:port"],
    ["insecure_registries", "", "Too small"],
    ["cell_only_registries", "10.0.0.5", "is not host:port"],
    ["cell_only_registries", "10.0.0.0/8", "is not host:port"],
    ["cell_only_registries", "[fe80::1%eth0]:5000", "invalid IPv6 address"],
  ];
  it.each(entryCases)("%s rejects %j", async (field, value, text) => {
    const res = await patch({ [field]: [value] });
    expect(res.status).toBe(422);
    expect(detail(res)).toContain(`${field}.0:`);
    expect(detail(res)).toContain(text);
  });

  it("rejects unknown fields, wrong types, a version in the body, malformed JSON", async () => {
    expect(detail(await patch({ insecure: [] }))).toBe("Unknown field(s): 'insecure'");
    expect(detail(await patch({ version: 7 }))).toBe("Unknown field(s): 'version'");
    expect(detail(await patch({ insecure_registries: "10.0.0.1" }))).toContain("insecure_registries:");
    expect((await patch({ insecure_registries: null })).status).toBe(422);
    const bad = await api("PATCH", PATH, { token: ADMIN, raw: "{" });
    expect(bad.status).toBe(400);
    const many = await patch({ insecure_registries: Array.from({ length: 501 }, (_, i) => `10.0.${i >> 8}.${i & 255}`) });
    expect(many.status).toBe(422);
  });

  it("is admin-only for every other principal", async () => {
    const member = await createUser();
    const space = await createSpace();
    await addDeveloper(member.guid, space.guid);
    const cell = await createCell();
    const router = await createRouter();
    for (const method of ["GET", "PATCH"]) {
      const anon = await api(method, PATH, { body: method === "PATCH" ? {} : undefined });
      expect(anon.status).toBe(401);
      expect(anon.json.errors[0].title).toBe("CF-NotAuthenticated");
      const bad = await api(method, PATH, { token: "bu_nope" });
      expect(bad.status).toBe(401);
      expect(bad.json.errors[0].code).toBe(1000);
      for (const token of [member.token, cell.token, router.token]) {
        const res = await api(method, PATH, { token, body: method === "PATCH" ? { insecure_registries: [] } : undefined });
        expect(res.status).toBe(403);
        expect(res.json.errors[0]).toMatchObject({ code: 10003, title: "CF-NotAuthorized" });
      }
    }
  });
});

/** The PEM with its DER cut short by 12 bytes (re-encoded, so the base64 itself is valid). */
function truncate(pem: string): string {
  const b64 = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  const cut = atob(b64).slice(0, -12);
  return `-----BEGIN CERTIFICATE-----\n${btoa(cut)}\n-----END CERTIFICATE-----`;
}
