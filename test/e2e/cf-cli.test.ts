/**
 * The real cf CLI (built unmodified from cloudfoundry/cli; ../shared/tools/cf-cli/cf
 * from the project root, or BERTH_CF_CLI) against a real control plane (wrangler
 * dev, local D1): login as admin, organizations, spaces, a user with a password,
 * roles, targeting, tenant isolation proven with `cf curl`, refresh after the
 * access token expired, and logout revoking the tokens.
 */
import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CF, type Cf, cfSession as newCfSession } from "../support/cf-cli";
import { startControlPlane, type ControlPlane } from "../support/control-plane";

/** Short access tokens: the refresh test waits this out (the CLI refreshes anything within a minute of expiry anyway). */
const ACCESS_TTL_S = 3;

let cp: ControlPlane;
const homes: string[] = [];
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const orgA = `org-a-${suffix}`;
const orgB = `org-b-${suffix}`;
const alice = `alice-${suffix}`;
const alicePassword = "Alice-pass-1";

async function cfSession(): Promise<Cf> {
  const session = await newCfSession();
  homes.push(session.home);
  return session;
}

const tokensOf = async (cf: Cf) => {
  const config = JSON.parse(await readFile(join(cf.home, ".cf", "config.json"), "utf8")) as { AccessToken: string; RefreshToken: string };
  return { access: config.AccessToken.replace(/^bearer /, ""), refresh: config.RefreshToken };
};

let admin: Cf;
let user: Cf;
let appB: string;
let appA: string;

beforeAll(async () => {
  if (!existsSync(CF)) throw new Error(`the cf CLI is not at ${CF}: set BERTH_CF_CLI`);
  cp = await startControlPlane({ vars: { ACCESS_TOKEN_TTL_SECONDS: String(ACCESS_TTL_S) } });
  admin = await cfSession();
  user = await cfSession();
}, 120_000);

afterAll(async () => {
  await cp?.stop();
  for (const h of homes) await rm(h, { recursive: true, force: true });
});

describe.sequential("the cf CLI against Berth", () => {
  it("cf api takes Berth's root document without a version warning", async () => {
    const out = await admin.ok("api", cp.url, "--skip-ssl-validation");
    expect(out).toMatch(/API version:\s+3\.100\.0/);
    expect(out).not.toMatch(/minimum supported/i);
  });

  it("cf auth as admin with ADMIN_PASSWORD", async () => {
    const out = await admin.ok("auth", "admin", cp.adminPassword);
    expect(out).toContain("OK");
  });

  it("cf create-org, cf orgs", async () => {
    await admin.ok("create-org", orgA);
    await admin.ok("create-org", orgB);
    const orgs = await admin.ok("orgs");
    expect(orgs).toContain(orgA);
    expect(orgs).toContain(orgB);
    expect(orgs).toContain("default");
  });

  it("cf target -o, cf create-space, cf target -s, cf spaces", async () => {
    await admin.ok("target", "-o", orgB);
    await admin.ok("create-space", "prod");
    await admin.ok("target", "-o", orgA);
    await admin.ok("create-space", "dev");
    const target = await admin.ok("target", "-o", orgA, "-s", "dev");
    expect(target).toMatch(new RegExp(`org:\\s+${orgA}`));
    expect(target).toMatch(/space:\s+dev/);
    expect(await admin.ok("spaces")).toContain("dev");
    expect(await admin.ok("target")).toMatch(/user:\s+admin/);
  });

  it("cf org shows the organization's spaces and the default quota it falls under", async () => {
    const out = await admin.ok("org", orgA);
    expect(out).toMatch(new RegExp(`name:\\s+${orgA}`));
    expect(out).toMatch(/spaces:\s+dev/);
    expect(out).toMatch(/quota:\s+default/);
  });

  it("cf create-user and cf set-org-role / set-space-role; cf org-users and space-users list them", async () => {
    expect(await admin.ok("create-user", alice, alicePassword)).toContain("OK");
    await admin.ok("set-org-role", alice, orgA, "OrgAuditor");
    await admin.ok("set-space-role", alice, orgA, "dev", "SpaceDeveloper");
    const section = (out: string, heading: string) => out.split(heading)[1]!.split(/\n[A-Z ]+\n/)[0]!;
    expect(section(await admin.ok("org-users", orgA), "ORG AUDITOR")).toContain(`${alice} (uaa)`);
    expect(section(await admin.ok("space-users", orgA, "dev"), "SPACE DEVELOPER")).toContain(`${alice} (uaa)`);
  });

  it("the admin makes an app in each organization (cf curl)", async () => {
    await admin.ok("curl", "-X", "PATCH", "/v3/feature_flags/diego_docker", "-d", '{"enabled":true}');
    const spaceOf = async (org: string, space: string) => {
      const orgGuid = JSON.parse(await admin.ok("curl", `/v3/organizations?names=${org}`)).resources[0].guid;
      return JSON.parse(await admin.ok("curl", `/v3/spaces?names=${space}&organization_guids=${orgGuid}`)).resources[0].guid as string;
    };
    const make = async (space: string, name: string) =>
      JSON.parse(await admin.ok("curl", "-X", "POST", "/v3/apps", "-d", JSON.stringify({ name, relationships: { space: { data: { guid: space } } }, lifecycle: { type: "docker", data: {} } }))).guid as string;
    appA = await make(await spaceOf(orgA, "dev"), "web-a");
    appB = await make(await spaceOf(orgB, "prod"), "web-b");
  });

  it("cf auth as the new user and cf target -o -s", async () => {
    await user.ok("api", cp.url, "--skip-ssl-validation");
    await user.ok("auth", alice, alicePassword);
    const target = await user.ok("target", "-o", orgA, "-s", "dev");
    expect(target).toMatch(new RegExp(`user:\\s+${alice}`));
    expect(target).toMatch(/space:\s+dev/);
    const orgs = await user.ok("orgs");
    expect(orgs).toContain(orgA);
    expect(orgs).not.toContain(orgB);
  });

  it("the user cannot see or touch another organization's apps (cf curl)", async () => {
    const listed = JSON.parse(await user.ok("curl", "/v3/apps?per_page=5000")).resources.map((a: { guid: string }) => a.guid);
    expect(listed).toContain(appA);
    expect(listed).not.toContain(appB);
    for (const args of [["/v3/apps/" + appB], ["-X", "PATCH", `/v3/apps/${appB}`, "-d", '{"name":"pwned"}'], ["-X", "DELETE", `/v3/apps/${appB}`], [`/v3/apps/${appB}/environment_variables`]]) {
      const body = JSON.parse((await user.run("curl", ...args)).out);
      expect(body.errors[0].title, args.join(" ")).toBe("CF-ResourceNotFound");
    }
    const target = await user.run("target", "-o", orgB);
    expect(target.code).not.toBe(0);
    expect(target.out).toContain(`Organization '${orgB}' not found`);
    // The admin still sees it, unchanged.
    expect(JSON.parse(await admin.ok("curl", `/v3/apps/${appB}`)).name).toBe("web-b");
  });

  it("after the access token expired, the CLI refreshes it and carries on", async () => {
    const before = await tokensOf(user);
    await new Promise((r) => setTimeout(r, (ACCESS_TTL_S + 1) * 1000));
    const expired = await fetch(`${cp.url}/v3/organizations`, { headers: { authorization: `bearer ${before.access}` } });
    expect(expired.status).toBe(401);
    const trace = await user.trace("orgs");
    // The CLI refreshes first (the trace hides the form body), then lists with the new token.
    expect(trace.indexOf("POST /uaa/oauth/token")).toBeGreaterThan(-1);
    expect(trace.indexOf("POST /uaa/oauth/token")).toBeLessThan(trace.indexOf("GET /v3/organizations"));
    expect(trace).toContain(orgA);
    expect((await tokensOf(user)).access).not.toBe(before.access);
  });

  it("cf logout revokes: neither the access token nor the refresh token works afterwards", async () => {
    await user.ok("orgs");
    const { access, refresh } = await tokensOf(user);
    expect((await fetch(`${cp.url}/v3/organizations`, { headers: { authorization: `bearer ${access}` } })).status).toBe(200);
    await user.ok("logout");
    expect((await fetch(`${cp.url}/v3/organizations`, { headers: { authorization: `bearer ${access}` } })).status).toBe(401);
    const refreshed = await fetch(`${cp.url}/uaa/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${btoa("cf:")}` },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refresh }).toString(),
    });
    expect(refreshed.status).toBe(401);
  });

  it("cf unset-space-role, cf delete-user and cf delete-org", async () => {
    await admin.ok("unset-space-role", alice, orgA, "dev", "SpaceDeveloper");
    expect(await admin.ok("space-users", orgA, "dev")).not.toContain(alice);
    await admin.ok("delete-user", alice, "-f");
    expect((await user.run("auth", alice, alicePassword)).code).not.toBe(0);
    await admin.ok("delete-org", orgB, "-f");
    expect(await admin.ok("orgs")).not.toContain(orgB);
    expect(JSON.parse((await admin.run("curl", `/v3/apps/${appB}`)).out).errors[0].title).toBe("CF-ResourceNotFound");
  });
});
