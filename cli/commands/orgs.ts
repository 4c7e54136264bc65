/**
 * @module Organizations and CF's roles, as the cf CLI spells them: create-org,
 * orgs, set-org-role, unset-org-role, org-users, set-space-role,
 * unset-space-role, space-users.
 */
import type { Command } from "commander";
import { UsageError, type Ctx } from "../context";
import type { Action } from "../main";

interface Named {
  guid: string;
  name: string;
}

interface Role {
  guid: string;
  type: string;
  relationships: { user: { data: { guid: string } } };
}

/** The cf CLI's role names and the API's. */
const ORG_ROLES: Record<string, string> = { OrgManager: "organization_manager", BillingManager: "organization_billing_manager", OrgAuditor: "organization_auditor" };
const SPACE_ROLES: Record<string, string> = { SpaceManager: "space_manager", SpaceDeveloper: "space_developer", SpaceAuditor: "space_auditor", SpaceSupporter: "space_supporter" };
const HEADINGS: Record<string, string> = {
  organization_manager: "ORG MANAGER", organization_billing_manager: "BILLING MANAGER", organization_auditor: "ORG AUDITOR", organization_user: "ORG USER",
  space_manager: "SPACE MANAGER", space_developer: "SPACE DEVELOPER", space_auditor: "SPACE AUDITOR", space_supporter: "SPACE SUPPORTER",
};

function roleType(table: Record<string, string>, role: string): string {
  const type = table[role] ?? (Object.values(table).includes(role) ? role : undefined);
  if (!type) throw new UsageError(`Unknown role '${role}': one of ${Object.keys(table).join(", ")}`);
  return type;
}

const q = encodeURIComponent;

export async function orgByName(ctx: Ctx, name: string): Promise<Named> {
  const [org] = await ctx.api().all<Named>(`/v3/organizations?names=${q(name)}`);
  if (!org) throw new UsageError(`Organization '${name}' not found.`);
  return org;
}

export async function spaceByName(ctx: Ctx, name: string, org?: Named): Promise<Named> {
  const [space] = await ctx.api().all<Named>(`/v3/spaces?names=${q(name)}${org ? `&organization_guids=${org.guid}` : ""}`);
  if (!space) throw new UsageError(`Space '${name}' not found${org ? ` in organization '${org.name}'` : ""}.`);
  return space;
}

async function userGuid(ctx: Ctx, name: string): Promise<string> {
  const [user] = await ctx.api().all<Named & { username: string }>(`/v3/users?usernames=${q(name)}`);
  if (!user) throw new UsageError(`User '${name}' not found.`);
  return user.guid;
}

/** The role rows of a type for a user there; deleting each is what unset means. */
async function unset(ctx: Ctx, type: string, user: string, scope: string) {
  const roles = await ctx.api().all<Role>(`/v3/roles?types=${type}&user_guids=${await userGuid(ctx, user)}&${scope}`);
  for (const r of roles) await ctx.api().delete(`/v3/roles/${r.guid}`);
  return roles.length;
}

async function listUsers(ctx: Ctx, scope: string, types: string[]) {
  const api = ctx.api();
  const page = await api.get<{ resources: Role[]; included?: { users: { guid: string; username: string; origin: string }[] } }>(`/v3/roles?${scope}&include=user&per_page=5000`);
  const names = new Map((page.included?.users ?? []).map((u) => [u.guid, `${u.username} (${u.origin})`]));
  const byType: Record<string, string[]> = {};
  for (const t of types) {
    byType[t] = page.resources.filter((r) => r.type === t).map((r) => names.get(r.relationships.user.data.guid) ?? r.relationships.user.data.guid).sort();
    ctx.out.say(`\n${HEADINGS[t]}`);
    ctx.out.say(byType[t]!.length ? byType[t]!.map((n) => `  ${n}`).join("\n") : `  No ${HEADINGS[t]} found`);
  }
  ctx.out.data(byType);
}

export function registerOrgs(program: Command, action: Action) {
  program
    .command("create-org <name>")
    .description("Create an organization (admin)")
    .action(action(async (ctx, name: string) => {
      const org = await ctx.api().post<Named>("/v3/organizations", { name });
      ctx.out.say(`Creating org ${name}...\nOK\n\nTIP: Use 'berth target -o ${name}' to target it.`);
      ctx.out.data(org);
    }));

  program
    .command("orgs")
    .description("List the organizations you can see")
    .action(action(async (ctx) => {
      const orgs = await ctx.api().all<Named>("/v3/organizations?order_by=name");
      ctx.out.say(["name", ...orgs.map((o) => o.name)].join("\n"));
      ctx.out.data(orgs);
    }));

  program
    .command("set-org-role <user> <org> <role>")
    .description(`Give a user an organization role (${Object.keys(ORG_ROLES).join(", ")})`)
    .action(action(async (ctx, user: string, orgName: string, role: string) => {
      const type = roleType(ORG_ROLES, role);
      const org = await orgByName(ctx, orgName);
      const res = await ctx.api().post("/v3/roles", { type, relationships: { user: { data: { username: user } }, organization: { data: { guid: org.guid } } } });
      ctx.out.say(`Assigning role ${role} to user ${user} in org ${orgName}...\nOK`);
      ctx.out.data(res);
    }));

  program
    .command("unset-org-role <user> <org> <role>")
    .description("Take an organization role from a user")
    .action(action(async (ctx, user: string, orgName: string, role: string) => {
      const type = roleType(ORG_ROLES, role);
      const org = await orgByName(ctx, orgName);
      const removed = await unset(ctx, type, user, `organization_guids=${org.guid}`);
      ctx.out.say(`Removing role ${role} from user ${user} in org ${orgName}...\nOK`);
      ctx.out.data({ removed });
    }));

  program
    .command("org-users <org>")
    .description("List an organization's users by role")
    .action(action(async (ctx, orgName: string) => {
      const org = await orgByName(ctx, orgName);
      ctx.out.say(`Getting users in org ${orgName}...`);
      await listUsers(ctx, `organization_guids=${org.guid}`, ["organization_manager", "organization_billing_manager", "organization_auditor", "organization_user"]);
    }));

  program
    .command("set-space-role <user> <org> <space> <role>")
    .description(`Give a user a space role (${Object.keys(SPACE_ROLES).join(", ")}); makes them an organization user first, as cf does`)
    .action(action(async (ctx, user: string, orgName: string, spaceName: string, role: string) => {
      const type = roleType(SPACE_ROLES, role);
      const org = await orgByName(ctx, orgName);
      const space = await spaceByName(ctx, spaceName, org);
      const api = ctx.api();
      await api.post("/v3/roles", { type: "organization_user", relationships: { user: { data: { username: user } }, organization: { data: { guid: org.guid } } } })
        .catch((e: Error) => { if (!/already has/.test(e.message)) throw e; });
      const res = await api.post("/v3/roles", { type, relationships: { user: { data: { username: user } }, space: { data: { guid: space.guid } } } });
      ctx.out.say(`Assigning role ${role} to user ${user} in org ${orgName} / space ${spaceName}...\nOK`);
      ctx.out.data(res);
    }));

  program
    .command("unset-space-role <user> <org> <space> <role>")
    .description("Take a space role from a user")
    .action(action(async (ctx, user: string, orgName: string, spaceName: string, role: string) => {
      const type = roleType(SPACE_ROLES, role);
      const space = await spaceByName(ctx, spaceName, await orgByName(ctx, orgName));
      const removed = await unset(ctx, type, user, `space_guids=${space.guid}`);
      ctx.out.say(`Removing role ${role} from user ${user} in org ${orgName} / space ${spaceName}...\nOK`);
      ctx.out.data({ removed });
    }));

  program
    .command("space-users <org> <space>")
    .description("List a space's users by role")
    .action(action(async (ctx, orgName: string, spaceName: string) => {
      const space = await spaceByName(ctx, spaceName, await orgByName(ctx, orgName));
      ctx.out.say(`Getting users in org ${orgName} / space ${spaceName}...`);
      await listUsers(ctx, `space_guids=${space.guid}`, ["space_manager", "space_developer", "space_auditor", "space_supporter"]);
    }));
}
