/** @module Bearer tokens: random, prefixed by kind, stored only as SHA-256 hex. */

export type TokenKind = "user" | "cell" | "router" | "enrollment";

const PREFIX: Record<TokenKind, string> = { user: "bu", cell: "bc", router: "br", enrollment: "be" };

export function newToken(kind: TokenKind): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let b64 = btoa(String.fromCharCode(...bytes));
  b64 = b64.replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  return `${PREFIX[kind]}_${b64}`;
}

/** The kind a token's prefix names, or undefined for a token without one of ours (an operator-chosen ADMIN_TOKEN). */
export function tokenKindOf(token: string): TokenKind | undefined {
  const prefix = token.slice(0, token.indexOf("_"));
  return (Object.keys(PREFIX) as TokenKind[]).find((k) => PREFIX[k] === prefix);
}

export async function hashToken(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
