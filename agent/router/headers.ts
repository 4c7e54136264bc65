/**
 * @module Header rewriting between client and instance, on Node's flat
 * `rawHeaders` arrays ([name, value, name, value, ...]) so a request costs one
 * pass and no header objects.
 *
 * Hop-by-hop headers (RFC 9110 § 7.6.1: Connection, the fields it names,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade) belong to one connection
 * and are dropped, except Connection and Upgrade on a WebSocket upgrade, which
 * the instance must see. Transfer-Encoding is kept on requests (it frames the
 * body Node re-encodes) and dropped on responses (Node picks chunked or
 * close-delimited for the client's own HTTP version).
 *
 * X-Forwarded-For/-Proto/-Host and Forwarded say who the client is and how it
 * came; they are kept only from a trusted proxy. From anyone else they are
 * dropped and set from what the router saw, or a client could pose as any
 * address (an app's allow-list) or as HTTPS (its secure-cookie decisions).
 */

export interface ForwardedFor {
  /** The client's address as the router saw it. */
  readonly clientAddress: string;
  /** The scheme the client used to reach the router. */
  readonly proto: string;
  /** Whether the peer is a trusted proxy, whose forwarding headers are kept. */
  readonly trusted: boolean;
  /** Made by the caller, used only when the request carries no X-Request-Id. */
  readonly newRequestId: () => string;
}

export interface UpstreamRequestHeaders {
  readonly headers: string[];
  readonly requestId: string;
  /** The Host header as sent ("" when absent), found in the same pass. */
  readonly host: string;
  /** Whether a body follows (Transfer-Encoding, or a non-zero Content-Length). */
  readonly hasBody: boolean;
  /** X-Forwarded-For and X-Forwarded-Proto as the instance gets them (for the access line). */
  readonly forwardedFor: string;
  readonly forwardedProto: string;
}

const ALWAYS_HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "http2-settings"]);

/** Lower-cased field names listed in the Connection header(s), or null when there are none. */
function connectionTokens(raw: readonly string[]): Set<string> | null {
  let tokens: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length !== 10 || raw[i]!.toLowerCase() !== "connection") continue;
    for (const token of raw[i + 1]!.split(",")) {
      const name = token.trim().toLowerCase();
      if (name.length > 0) (tokens ??= new Set()).add(name);
    }
  }
  return tokens;
}

function isHopByHop(name: string, named: Set<string> | null): boolean {
  return ALWAYS_HOP_BY_HOP.has(name) || (named !== null && named.has(name));
}

/**
 * Request headers for the instance: hop-by-hop fields dropped (kept for an
 * upgrade), X-Request-Id passed through or made. From a trusted proxy,
 * X-Forwarded-For is appended to and X-Forwarded-Proto and -Host set when
 * absent (the proxy already set the true ones); from anyone else all three
 * (and Forwarded) are replaced.
 */
export function upstreamRequestHeaders(raw: readonly string[], fwd: ForwardedFor, upgrade: boolean): UpstreamRequestHeaders {
  const named = connectionTokens(raw);
  const headers: string[] = [];
  let forwardedFor: string | undefined;
  let requestId: string | undefined;
  let host: string | undefined;
  let proto: string | undefined;
  let hasForwardedHost = false;
  let hasBody = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    switch (lower) {
      case "x-forwarded-for":
        if (fwd.trusted) forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        continue;
      case "x-request-id":
        requestId ??= value;
        break;
      case "x-forwarded-proto":
        if (!fwd.trusted) continue;
        proto ??= value;
        break;
      case "x-forwarded-host":
        if (!fwd.trusted) continue;
        hasForwardedHost = true;
        break;
      case "forwarded":
        if (!fwd.trusted) continue;
        break;
      case "host":
        host ??= value;
        break;
      case "transfer-encoding":
        hasBody = true;
        break;
      case "content-length":
        if (value !== "0") hasBody = true;
        break;
      case "connection":
      case "upgrade":
        if (upgrade) break;
        continue;
      default:
        if (isHopByHop(lower, named)) continue;
    }
    headers.push(name, value);
  }
  const xff = forwardedFor === undefined ? fwd.clientAddress : `${forwardedFor}, ${fwd.clientAddress}`;
  headers.push("X-Forwarded-For", xff);
  if (proto === undefined) headers.push("X-Forwarded-Proto", fwd.proto);
  if (!hasForwardedHost && host !== undefined) headers.push("X-Forwarded-Host", host);
  if (requestId === undefined) {
    requestId = fwd.newRequestId();
    headers.push("X-Request-Id", requestId);
  }
  return { headers, requestId, host: host ?? "", hasBody, forwardedFor: xff, forwardedProto: proto ?? fwd.proto };
}

/** Response headers for the client: hop-by-hop fields and Transfer-Encoding dropped. */
export function clientResponseHeaders(raw: readonly string[]): string[] {
  const named = connectionTokens(raw);
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (lower === "transfer-encoding" || isHopByHop(lower, named)) continue;
    headers.push(raw[i]!, raw[i + 1]!);
  }
  return headers;
}

/** `::ffff:127.0.0.1` → `127.0.0.1`: the IPv4 client of a dual-stack socket. */
export function clientAddress(remote: string | undefined): string {
  if (remote === undefined) return "unknown";
  return remote.startsWith("::ffff:") && remote.includes(".") ? remote.slice(7) : remote;
}
