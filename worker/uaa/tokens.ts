/**
 * @module The tokens the UAA-compatible endpoints hand out, as the cf CLI reads
 * them: signed JWTs (auth/jwt.ts) carrying `user_id`, `user_name`, `origin`,
 * `client_id`, `scope`, `exp`, `jti` and `revocable`. A password sign-in opens a
 * session (db/sessions.ts); its refresh token's jti is `<sid>-r`, its access
 * tokens' `<sid>.<random>`, so revoking either jti ends the session.
 * Client-credential tokens have no session and no refresh token, and are not
 * revocable (as UAA's default); they only live `accessTokenTtlS`.
 */
import { type SigningKeys, base64url, signJwt, verifyJwt } from "../auth/jwt";
import { createSession, sessionUser, type SessionUser } from "../db/sessions";
import type { Db } from "../env";
import { newGuid } from "../http/ids";
import type { UaaConfig } from "./config";

/** UAA's origin for users it keeps itself; Berth has no other identity provider. */
export const ORIGIN = "uaa";
export const CF_CLIENT = "cf";

const USER_SCOPES = ["openid", "cloud_controller.read", "cloud_controller.write", "password.write", "uaa.user"];
const ADMIN_SCOPES = [...USER_SCOPES, "cloud_controller.admin", "scim.read", "scim.write", "uaa.admin"];
export const scopesOf = (u: { admin: boolean }): string[] => (u.admin ? ADMIN_SCOPES : USER_SCOPES);

export interface TokenResponse {
  access_token: string;
  token_type: "bearer";
  refresh_token?: string;
  expires_in: number;
  scope: string;
  jti: string;
}

type Grant = "password" | "client_credentials";

interface Issue {
  keys: SigningKeys;
  config: UaaConfig;
  issuer: string;
  now: Date;
}

const randomId = () => base64url(crypto.getRandomValues(new Uint8Array(12)));

function claims(user: SessionUser, clientId: string, grant: Grant, iss: Issue, extra: Record<string, unknown>) {
  const iat = Math.floor(iss.now.getTime() / 1000);
  return {
    sub: user.guid,
    user_id: user.guid,
    user_name: user.name,
    origin: ORIGIN,
    client_id: clientId,
    cid: clientId,
    azp: clientId,
    grant_type: grant,
    scope: scopesOf(user),
    aud: ["cloud_controller", "openid", "password", "scim", "uaa"],
    iss: iss.issuer,
    zid: "uaa",
    iat,
    ...extra,
  };
}

async function accessToken(user: SessionUser, clientId: string, grant: Grant, iss: Issue, sid?: string) {
  const jti = sid ? `${sid}.${randomId()}` : randomId();
  const exp = Math.floor(iss.now.getTime() / 1000) + iss.config.accessTokenTtlS;
  const token = await signJwt(iss.keys, claims(user, clientId, grant, iss, { jti, exp, token_use: "access", revocable: sid !== undefined, ...(sid ? { sid } : {}) }));
  return { token, jti };
}

/** A password sign-in: a new session, its refresh token and a first access token. */
export async function signIn(db: Db, user: SessionUser, clientId: string, iss: Issue): Promise<TokenResponse> {
  const sid = newGuid();
  const expiresAt = iss.now.getTime() + iss.config.refreshTokenTtlS * 1000;
  await createSession(db, { guid: sid, userGuid: user.guid, clientId, expiresAt }, iss.now);
  const refresh = await signJwt(iss.keys, claims(user, clientId, "password", iss, {
    jti: `${sid}-r`, exp: Math.floor(expiresAt / 1000), sid, token_use: "refresh", revocable: true,
  }));
  const access = await accessToken(user, clientId, "password", iss, sid);
  return { access_token: access.token, token_type: "bearer", refresh_token: refresh, expires_in: iss.config.accessTokenTtlS, scope: scopesOf(user).join(" "), jti: access.jti };
}

/** A new access token for a live session's refresh token; null when forged, expired, revoked or another client's. */
export async function refreshSession(db: Db, refreshToken: string, clientId: string, iss: Issue): Promise<TokenResponse | null> {
  const c = await verifyJwt(iss.keys, refreshToken);
  if (!c || c.token_use !== "refresh" || typeof c.sid !== "string" || typeof c.sub !== "string" || c.client_id !== clientId) return null;
  const user = await sessionUser(db, c.sid, c.sub, iss.now.getTime());
  if (!user) return null;
  const access = await accessToken(user, clientId, "password", iss, c.sid);
  // The same refresh token goes back, as UAA does for non-rotating clients.
  return { access_token: access.token, token_type: "bearer", refresh_token: refreshToken, expires_in: iss.config.accessTokenTtlS, scope: scopesOf(user).join(" "), jti: access.jti };
}

/** A client-credentials token: no session, no refresh token. */
export async function clientToken(user: SessionUser, iss: Issue): Promise<TokenResponse> {
  const access = await accessToken(user, user.name, "client_credentials", iss);
  return { access_token: access.token, token_type: "bearer", expires_in: iss.config.accessTokenTtlS, scope: scopesOf(user).join(" "), jti: access.jti };
}

export interface VerifiedToken {
  sub: string;
  sid?: string;
  use: "access" | "refresh";
  exp: number;
}

/** A Berth-signed token's subject, session and use; null when it is not one. Expiry is left to the caller. */
export async function readToken(keys: SigningKeys, token: string): Promise<VerifiedToken | null> {
  const c = await verifyJwt(keys, token);
  if (!c || typeof c.sub !== "string" || typeof c.exp !== "number" || (c.token_use !== "access" && c.token_use !== "refresh")) return null;
  if (c.sid !== undefined && typeof c.sid !== "string") return null;
  return { sub: c.sub, sid: c.sid as string | undefined, use: c.token_use, exp: c.exp };
}
