/**
 * @module The UAA endpoints the cf CLI calls, served by the Worker under /uaa
 * (the root document's `login` and `uaa` links): login prompts, the token
 * endpoint (password, refresh_token and client_credentials grants for the `cf`
 * client, whose secret is empty), token revocation (`cf logout`) and the SCIM
 * user calls of `cf create-user`, `cf delete-user` and `cf passwd`.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { signingKeys } from "../auth/jwt";
import { deleteSession, deleteUserSessions } from "../db/sessions";
import { ADMIN_USER, createPasswordUser, deleteUser, getUser, listUsers, setPassword, type User } from "../db/users";
import type { AppEnv } from "../env";
import { apiOrigin } from "../http/links";
import { MAX_BODY_BYTES } from "../http/validate";
import { uaaConfig } from "./config";
import {
  UaaError, insufficientScope, invalidClient, invalidGrant, invalidPassword, invalidRequest, invalidScim,
  scimConflict, scimNotFound, uaaUnauthorized, unsupportedGrant,
} from "./errors";
import { checkClient, checkPassword } from "./sign-in";
import { CF_CLIENT, ORIGIN, clientToken, readToken, refreshSession, signIn } from "./tokens";

export const uaa = new Hono<AppEnv>();

/** The UAA API level these endpoints follow, reported as UAA's `app.version`. */
const UAA_API_VERSION = "4.30.0";

/** The same user-name rule as POST /v3/users. */
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$/;

const lockout = (c: Context<AppEnv>) => {
  const cfg = uaaConfig(c.env);
  return { failures: cfg.lockoutFailures, windowMs: cfg.lockoutWindowS * 1000 };
};

async function issuer(c: Context<AppEnv>, now: Date) {
  return { keys: await signingKeys(c.env), config: uaaConfig(c.env), issuer: `${apiOrigin(c)}/uaa/oauth/token`, now };
}

async function readForm(c: Context<AppEnv>): Promise<URLSearchParams> {
  const text = await c.req.text();
  if (text.length > MAX_BODY_BYTES) throw invalidRequest("Request body too large");
  return new URLSearchParams(text);
}

/** HTTP Basic client credentials, or the form's client_id/client_secret. */
function clientOf(c: Context<AppEnv>, form: URLSearchParams): { id: string; secret: string } | undefined {
  const basic = /^basic\s+([A-Za-z0-9+/=]+)$/i.exec(c.req.header("authorization")?.trim() ?? "");
  if (basic) {
    let decoded: string;
    try {
      decoded = atob(basic[1]!);
    } catch {
      throw invalidClient();
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) throw invalidClient();
    return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) };
  }
  const id = form.get("client_id");
  return id === null ? undefined : { id, secret: form.get("client_secret") ?? "" };
}

const required = (form: URLSearchParams, name: string): string => {
  const v = form.get(name);
  if (!v) throw invalidRequest(`Missing ${name}`);
  if (v.length > 1024) throw invalidRequest(`${name} is too long`);
  return v;
};

uaa.get("/login", (c) =>
  c.json({
    app: { version: UAA_API_VERSION },
    links: { uaa: `${apiOrigin(c)}/uaa`, login: `${apiOrigin(c)}/uaa` },
    zone_name: "uaa",
    entityID: "berth",
    prompts: { username: ["text", "Username"], password: ["password", "Password"] },
  }),
);

uaa.post("/oauth/token", async (c) => {
  const form = await readForm(c);
  const grant = form.get("grant_type") ?? "";
  const now = new Date();
  switch (grant) {
    case "password": {
      const client = clientOf(c, form);
      if (client?.id !== CF_CLIENT || client.secret !== "") throw invalidClient();
      const user = await checkPassword(c.var.db, c.env.ADMIN_PASSWORD, required(form, "username"), required(form, "password"), now.getTime(), lockout(c));
      return c.json(await signIn(c.var.db, user, CF_CLIENT, await issuer(c, now)));
    }
    case "refresh_token": {
      const client = clientOf(c, form);
      if (client?.id !== CF_CLIENT || client.secret !== "") throw invalidClient();
      const tokens = await refreshSession(c.var.db, required(form, "refresh_token"), CF_CLIENT, await issuer(c, now));
      if (!tokens) throw invalidGrant("Invalid refresh token: expired, revoked or not issued here");
      return c.json(tokens);
    }
    case "client_credentials": {
      const client = clientOf(c, form);
      if (!client || !client.id || !client.secret) throw invalidClient();
      const user = await checkClient(c.var.db, client.id, client.secret, now.getTime(), lockout(c));
      return c.json(await clientToken(user, await issuer(c, now)));
    }
    default:
      throw unsupportedGrant(grant);
  }
});

/**
 * `cf logout` sends each token's jti with that token as the credential (the
 * refresh token too, and the access token as "Bearer bearer <jwt>"). Either jti
 * ends the session. The credential may have expired (logging out then still
 * helps); it must be Berth's and its owner's.
 */
uaa.delete("/oauth/token/revoke/:jti", async (c) => {
  const credential = (c.req.header("authorization") ?? "").trim().replace(/^(bearer\s+){1,2}/i, "");
  const caller = credential && c.env.TOKEN_SIGNING_KEY ? await readToken(await signingKeys(c.env), credential) : null;
  if (!caller) throw uaaUnauthorized();
  const sid = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:-r|\.[A-Za-z0-9_-]+)$/.exec(c.req.param("jti"))?.[1];
  if (sid) await deleteSession(c.var.db, sid, caller.sub);
  return c.json({});
});

// SCIM: what the cf CLI's user commands call.

const scimUser = (u: User) => ({
  id: u.guid,
  userName: u.name,
  origin: ORIGIN,
  name: { familyName: u.name, givenName: u.name },
  emails: [{ value: u.name, primary: true }],
  active: true,
  verified: true,
  zoneId: "uaa",
  meta: { version: 0, created: u.createdAt, lastModified: u.updatedAt },
  schemas: ["urn:scim:schemas:core:1.0"],
});

/** SCIM is for admins (UAA's scim.read/scim.write); errors in UAA's envelope. */
function requireScimAdmin(c: Context<AppEnv>) {
  const p = c.var.principal;
  if (p.kind === "anonymous") throw uaaUnauthorized();
  if (p.kind !== "user" || !p.admin) throw insufficientScope();
  return p;
}

const NewScimUser = z.object({
  userName: z.string().regex(USER_NAME),
  password: z.string().min(1).max(255),
  // The cf CLI sends "" when no --origin was given.
  origin: z.enum([ORIGIN, ""]).optional(),
});

async function readScimJson(c: Context<AppEnv>): Promise<unknown> {
  const text = await c.req.text();
  if (text.length > MAX_BODY_BYTES) throw invalidScim("Request body too large");
  try {
    return JSON.parse(text);
  } catch {
    throw invalidScim("Request body is not JSON");
  }
}

uaa.post("/Users", async (c) => {
  const actor = requireScimAdmin(c);
  const parsed = NewScimUser.safeParse(await readScimJson(c));
  if (!parsed.success) {
    throw invalidScim(`A user needs a userName (letters, digits or . _ @ + -), a password of 1-255 characters, and origin '${ORIGIN}' if any`);
  }
  const { userName, password } = parsed.data;
  if (userName === ADMIN_USER.name) throw scimConflict(userName);
  const user = await createPasswordUser(c.var.db, { name: userName, password }, actor);
  if (!user) throw scimConflict(userName);
  return c.json(scimUser(user), 201);
});

/** The filters the cf CLI sends: `userName eq "NAME"`, optionally `and origin eq "ORIGIN"`. */
const FILTER = /^userName eq "([^"\\]{1,255})"(?: and origin eq "([^"\\]{1,255})")?$/;

uaa.get("/Users", async (c) => {
  requireScimAdmin(c);
  const m = FILTER.exec(c.req.query("filter") ?? "");
  if (!m) throw new UaaError(400, "invalid_scim_filter", 'Berth answers the filter userName eq "NAME" [and origin eq "ORIGIN"]');
  const found = m[2] !== undefined && m[2] !== ORIGIN ? [] : (await listUsers(c.var.db, { names: [m[1]!], orderBy: "created_at", page: 1, perPage: 1 })).users;
  return c.json({ resources: found.map(scimUser), startIndex: 1, itemsPerPage: 100, totalResults: found.length, schemas: ["urn:scim:schemas:core:1.0"] });
});

uaa.delete("/Users/:id", async (c) => {
  requireScimAdmin(c);
  const id = c.req.param("id");
  if (id === ADMIN_USER.guid) throw invalidScim("The admin user is defined by the Worker secret ADMIN_PASSWORD and cannot be deleted");
  const user = await getUser(c.var.db, id);
  if (!user || !(await deleteUser(c.var.db, id))) throw scimNotFound(id);
  return c.json(scimUser(user));
});

const PasswordChange = z.object({ oldPassword: z.string().max(1024).optional(), password: z.string().min(1).max(255) });

/** A user changes their own password with the old one; an admin sets anyone's. Either way every session of theirs ends. */
uaa.put("/Users/:id/password", async (c) => {
  const p = c.var.principal;
  if (p.kind !== "user") throw uaaUnauthorized();
  const id = c.req.param("id");
  if (!p.admin && p.guid !== id) throw insufficientScope();
  const parsed = PasswordChange.safeParse(await readScimJson(c));
  if (!parsed.success) throw invalidPassword("A new password of 1-255 characters is required");
  if (id === ADMIN_USER.guid) throw invalidPassword("The admin's password is the Worker secret ADMIN_PASSWORD; change it there");
  const user = await getUser(c.var.db, id);
  if (!user) throw scimNotFound(id);
  if (!p.admin || p.guid === id) {
    // Your own password: prove you know the old one (counts toward the lockout like a sign-in).
    await checkPassword(c.var.db, c.env.ADMIN_PASSWORD, user.name, parsed.data.oldPassword ?? "", Date.now(), lockout(c)).catch((e) => {
      if (e instanceof UaaError && e.error === "unauthorized") throw new UaaError(401, "unauthorized", "Old password is incorrect");
      throw e;
    });
  }
  await setPassword(c.var.db, id, parsed.data.password);
  await deleteUserSessions(c.var.db, id);
  return c.json({ status: "ok", message: "password updated" });
});
