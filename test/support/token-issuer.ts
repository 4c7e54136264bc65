/**
 * @module A small token issuer for the registry's `token` auth (the Docker
 * token spec, distribution docs/spec/auth/token.md): `GET /token?service=&scope=`
 * answers `{token, access_token, expires_in, issued_at}` with a JWT signed
 * ES256 by a key whose certificate travels in the `x5c` header and sits in the
 * registry's `rootcertbundle`. Like Docker Hub: good credentials get the pull
 * access they ask for, no credentials get pull only when anonymous pulls are
 * allowed (else a token with no access, which the registry answers with 401
 * insufficient_scope), wrong credentials get 401.
 */
import { createServer, type Server } from "node:http";
import { createPrivateKey, randomUUID, sign, X509Certificate } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { SigningCert } from "./tls";

export interface TokenIssuerOptions {
  signing: SigningCert;
  issuer: string;
  service: string;
  username: string;
  password: string;
  anonymousPull: boolean;
}

export interface TokenIssuer {
  realm: string;
  /** Every token request seen, for assertions on what the client sent. */
  requests: { scopes: string[]; service: string | null; user: string | null }[];
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

export async function startTokenIssuer(opts: TokenIssuerOptions): Promise<TokenIssuer> {
  const key = createPrivateKey(opts.signing.keyPem);
  const x5c = [new X509Certificate(opts.signing.certPem).raw.toString("base64")];
  const requests: TokenIssuer["requests"] = [];

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://issuer");
    const scopes = url.searchParams.getAll("scope");
    const creds = parseBasic(req.headers.authorization);
    requests.push({ scopes, service: url.searchParams.get("service"), user: creds?.user ?? null });
    if (url.pathname !== "/token") return void res.writeHead(404).end();
    if (creds && (creds.user !== opts.username || creds.password !== opts.password)) {
      res.writeHead(401, { "content-type": "application/json" });
      return void res.end(JSON.stringify({ details: "incorrect username or password" }));
    }
    const granted = creds || opts.anonymousPull;
    const access = granted ? scopes.flatMap(parseScope) : [];
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "ES256", x5c };
    const claims = {
      iss: opts.issuer, sub: creds?.user ?? "", aud: opts.service,
      exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
    const token = `${input}.${b64url(signature)}`;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function parseBasic(header: string | undefined): { user: string; password: string } | null {
  if (!header?.startsWith("Basic ")) return null;
  const decoded = Buffer.from(header.slice(6), "base64").toString();
  const i = decoded.indexOf(":");
  return i < 0 ? null : { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

/** `repository:name:pull,push` → pull access only (tests never push through tokens). */
function parseScope(scope: string) {
  const parts = scope.split(":");
  const actions = (parts.at(-1) ?? "").split(",").filter((a) => a === "pull");
  const name = parts.slice(1, -1).join(":");
  return parts[0] === "repository" && name && actions.length ? [{ type: "repository", name, actions }] : [];
}
