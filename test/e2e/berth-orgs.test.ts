/**
 * The berth CLI's organization and role commands against a real control plane
 * (wrangler dev, local D1): create-org, orgs, target -o / -s, create-space in
 * the targeted organization, set-/unset-org-role, set-/unset-space-role,
 * org-users and space-users, and what the roles let a user see.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { berthCli } from "../support/cli";
import { startControlPlane, type ControlPlane } from "../support/control-plane";
import { adminCall } from "../support/stack";

let cp: ControlPlane;
let adminHome: string;
let userHome: string;
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const org = `team-${suffix}`;
const other = `other-${suffix}`;
const bob = `bob-${suffix}`;
let bobToken: string;

const admin = berthCli(() => adminHome);
const user = berthCli(() => userHome);

beforeAll(async () => {
  adminHome = await mkdtemp(join(tmpdir(), "berth-orgs-admin-"));
  userHome = await mkdtemp(join(tmpdir(), "berth-orgs-user-"));
  cp = await startControlPlane();
  await admin.ok("api", cp.url);
  await admin.ok("login", "-t", cp.adminToken);
}, 120_000);

afterAll(async () => {
  await cp?.stop();
  await rm(adminHome, { recursive: true, force: true });
  await rm(userHome, { recursive: true, force: true });
});

describe.sequential("berth: organizations and roles", () => {
  it("create-org, orgs, target -o and create-space in the targeted organization", async () => {
    await admin.ok("create-org", org);
    await admin.ok("create-org", other);
    expect(await admin.ok("orgs")).toContain(org);
    await admin.ok("target", "-o", other);
    await admin.ok("create-space", "dev");
    await admin.ok("target", "-o", org);
    await admin.ok("create-space", "dev");
    const target = await admin.ok("target", "-o", org, "-s", "dev");
    expect(target).toMatch(new RegExp(`org:\\s+${org}`));
    expect(target).toMatch(/space:\s+dev/);
    // Two spaces named dev, one per organization: the targeted one is this organization's.
    const [orgGuid] = (await adminCall(cp, "GET", `/v3/organizations?names=${org}`)).resources.map((o: { guid: string }) => o.guid);
    const [devGuid] = (await adminCall(cp, "GET", `/v3/spaces?names=dev&organization_guids=${orgGuid}`)).resources.map((s: { guid: string }) => s.guid);
    expect(JSON.parse(await admin.ok("--json", "target")).space.guid).toBe(devGuid);
  });

  it("set-org-role and set-space-role; org-users and space-users list them; the user sees only that organization", async () => {
    bobToken = (await adminCall(cp, "POST", "/v3/users", { name: bob })).token;
    await admin.ok("set-org-role", bob, org, "OrgAuditor");
    await admin.ok("set-space-role", bob, org, "dev", "SpaceDeveloper");
    expect(await admin.ok("org-users", org)).toMatch(new RegExp(`ORG AUDITOR\\n  ${bob} \\(uaa\\)`));
    expect(await admin.ok("space-users", org, "dev")).toMatch(new RegExp(`SPACE DEVELOPER\\n  ${bob} \\(uaa\\)`));
    await user.ok("api", cp.url);
    await user.ok("login", "-t", bobToken);
    const orgs = await user.ok("orgs");
    expect(orgs).toContain(org);
    expect(orgs).not.toContain(other);
    expect(await user.ok("target", "-o", org, "-s", "dev")).toMatch(/space:\s+dev/);
    const refused = await user.berth("target", "-o", other);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain(`Organization '${other}' not found.`);
  });

  it("a role name berth does not know is a usage error, and nothing changes", async () => {
    const r = await admin.berth("set-org-role", bob, org, "OrgOwner");
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("Unknown role 'OrgOwner'");
  });

  it("unset-space-role and unset-org-role take the roles away", async () => {
    await admin.ok("unset-space-role", bob, org, "dev", "SpaceDeveloper");
    expect(await admin.ok("space-users", org, "dev")).not.toContain(bob);
    await admin.ok("unset-org-role", bob, org, "OrgAuditor");
    expect(await admin.ok("org-users", org)).not.toMatch(new RegExp(`ORG AUDITOR\\n  ${bob}`));
  });
});
