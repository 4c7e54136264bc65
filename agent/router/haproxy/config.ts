/**
 * @module The HAProxy configuration for Berth's router, rendered from the
 * router's settings and the current pool state. Pure: a string out, no files.
 *
 * Shape (why each part is there):
 * - Routing: the frontend looks the request's route key (Host lowercased,
 *   without port or trailing dot) up in a map file, whose entries the daemon
 *   changes at runtime (`add map`/`set map`/`del map`), and uses the backend
 *   the map names (or `none`: no instance runs). Backends are a pre-made pool (`b0`…`bN-1`) whose servers
 *   the daemon adds and removes at runtime (`add server`/`del server`); a
 *   table needing more backends than the pool has is applied by a reload with
 *   a bigger pool (haproxy-router.ts).
 * - The router's pages (pages.ts) with `X-Berth-Router-Error`: 404 and 503 by
 *   `http-request return`, 502/504 by `http-error` for the answers HAProxy
 *   makes itself. HAProxy says 503 when it cannot connect to any instance;
 *   Berth says 502 (Gorouter's), so `http-after-response` turns those into 502.
 * - Retries: connect failures always (nothing reached the instance), an empty
 *   response only for safe methods without a body; each retry on another
 *   instance (`option redispatch 1`).
 * - X-Forwarded-For/-Proto/-Host and Forwarded kept only from trusted proxies.
 * - One access line per request to HAProxy's stdout, a pipe the daemon drains
 *   (access-pipe.ts); tab-separated after a marker, parsed by access-line.ts.
 */
import type { RouterTimeouts } from "../config";
import { pageBody, statusOf, type RouterError } from "../pages";

export interface HaproxyServer {
  /** `s<N>`, unique in its backend. */
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

export interface HaproxyFiles {
  /** The runtime API socket (admin level; also hands the listeners to a reloaded process). */
  readonly socket: string;
  /** Route map key (plan.ts) → backend name, for routes with instances. */
  readonly routesMap: string;
  /** Route map key → `none`, for routes without. */
  readonly idleMap: string;
  /** `loaded 1` once the first route table is applied. */
  readonly stateMap: string;
  /** The Lua file holding {@link HOP_BY_HOP_LUA}. */
  readonly lua: string;
  /** HTTPS: the crt-list naming the certificate files, default certificate first. */
  readonly crtList?: string | undefined;
}

export interface HaproxySettings {
  readonly listenHost: string;
  readonly listenPort: number;
  /** HTTPS beside HTTP; strictSni refuses a handshake no certificate covers (no default certificate). */
  readonly tls?: { readonly port: number; readonly strictSni: boolean } | undefined;
  readonly trustedProxies: readonly string[];
  readonly maxAttempts: number;
  readonly maxTunnelsPerRoute: number;
  readonly threads: number;
  readonly timeouts: RouterTimeouts;
  readonly files: HaproxyFiles;
}

/** The longest access line HAProxy writes whole (its default, 1024, would cut a line with long captures). */
const ACCESS_LINE_MAX = 4096;

/** Marks the access lines among what HAProxy writes to the ring. */
export const ACCESS_MARKER = "berth-access";

/**
 * Tab-separated, in access-line.ts's order: method, URI, HTTP version,
 * status, server address and port, retries, total time (ms), bytes from and
 * to the client (heads included), client address and port, termination state, the router's
 * own error (if it answered itself), then the captured request fields
 * (CAPTURES), which HAProxy writes as `{a|b|…}` with control characters,
 * `|`, `{`, `}` and `#` encoded as `#XX`, so no client can break the line.
 */
const LOG_FORMAT = [ACCESS_MARKER, "%HM", "%HU", "%HV", "%ST", "%si", "%sp", "%rc", "%Ta", "%U", "%B", "%ci", "%cp", "%tsc", "%[var(txn.error)]", "%hr"].join("\\t");

/** What the access line captures of each request, in this order (access-line.ts reads them so). */
export const CAPTURES = ["host", "request id", "referer", "user agent", "content-length", "x-forwarded-for in", "x-forwarded-proto"] as const;

/**
 * Drops the request headers its Connection header names (RFC 9110 § 7.6.1),
 * which HAProxy itself keeps. Run only for a request whose Connection names
 * something beyond keep-alive, close and upgrade, so most requests never
 * enter Lua.
 */
export const HOP_BY_HOP_LUA = `
local keep = { ["close"] = true, ["keep-alive"] = true, ["upgrade"] = true, ["host"] = true,
  ["content-length"] = true, ["transfer-encoding"] = true }
core.register_action("berth_hop_by_hop", { "http-req" }, function(txn)
  local connection = txn.http:req_get_headers()["connection"]
  if connection == nil then return end
  for _, value in pairs(connection) do
    for token in string.gmatch(value, "[^,%s]+") do
      local name = string.lower(token)
      if not keep[name] then txn.http:req_del_header(name) end
    end
  end
end)
`;

/**
 * What the map names for a route with no instance running: the frontend
 * answers 503 itself. (Not `nbsrv eq 0` in the backend: a process draining
 * after a reload counts no usable server anywhere, yet still serves the
 * requests already on its connections.)
 */
export const NO_ENDPOINTS = "none";

/**
 * What `add server` must say for a server to keep idle connections as one in
 * the config file does: HAProxy 2.6 gives a server added at runtime no idle
 * pool (pool-max-conn 0, purge delay 0), so every request would connect anew.
 */
export const DYNAMIC_SERVER_OPTIONS = "pool-max-conn -1 pool-purge-delay 5s";

export function backendName(index: number): string {
  return `b${index}`;
}

/** `address:port` as HAProxy reads it; IPv6 literals spelled with their family. */
export function serverAddress(address: string, port: number): string {
  return address.includes(":") ? `ipv6@${address}:${port}` : `${address}:${port}`;
}

/** A double-quoted config word: backslash and quote escaped, newlines as \n. */
function quoted(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/** The page for `error` as a log-format string: the host and request id filled in per request. */
function pageFormat(error: RouterError): string {
  return quoted(pageBody(error, "\u0000H", "\u0000R").replace(/%/g, "%%")).replace("\u0000H", "%[var(txn.host)]").replace("\u0000R", "%[var(txn.reqid)]");
}

/** Headers every router page carries. */
function pageHeaders(error: RouterError): string {
  return `content-type "text/plain; charset=utf-8" lf-string ${pageFormat(error)} hdr X-Content-Type-Options nosniff hdr X-Berth-Router-Error ${error} hdr X-Request-Id "%[var(txn.reqid)]"`;
}

/** `http-request return` of the page for `error` when `condition` holds, recording the error for the access line. */
function returnPage(error: RouterError, condition: string): string[] {
  return [`http-request set-var(txn.error) str(${error}) if ${condition}`, `http-request return status ${statusOf(error)} ${pageHeaders(error)} if ${condition}`];
}

function ms(value: number): string {
  return `${value}ms`;
}

function section(head: string, lines: readonly string[]): string {
  return [head, ...lines.map((l) => `  ${l}`)].join("\n");
}

function globalSection(s: HaproxySettings): string {
  return section("global", [
    `stats socket ${s.files.socket} mode 600 level admin expose-fd listeners`,
    // The daemon's runtime API session, open for the process's life, must not time out.
    "stats timeout 24d",
    `nbthread ${s.threads}`,
    `log stdout len ${ACCESS_LINE_MAX} format raw local0`,
    // The daemon stops HAProxy at shutdownMs; this bounds a process left draining by a reload too.
    `hard-stop-after ${ms(s.timeouts.shutdownMs + 1_000)}`,
    `lua-load ${s.files.lua}`,
    // NAME.crt's key is NAME.key beside it (tls-certs.ts's layout).
    "ssl-load-extra-del-ext",
    "ssl-load-extra-files key",
  ]);
}

function defaultsSections(s: HaproxySettings): string[] {
  const t = s.timeouts;
  const base = section("defaults base", [
    "mode http",
    "log global",
    `log-format "${LOG_FORMAT}"`,
    "option dontlognull",
    "option http-keep-alive",
    // A process draining after a reload keeps idle client connections until their next request, answered
    // with Connection: close, rather than closing them under a client that may be sending on them.
    "option idle-close-on-response",
    `timeout connect ${ms(t.connectMs)}`,
    `timeout server ${ms(t.upstreamIdleMs)}`,
    `timeout client ${ms(Math.max(t.upstreamIdleMs, t.clientHeadersMs))}`,
    `timeout http-request ${ms(t.clientHeadersMs)}`,
    `timeout http-keep-alive ${ms(t.clientKeepAliveMs)}`,
    `timeout tunnel ${ms(t.tunnelIdleMs)}`,
    `retries ${s.maxAttempts - 1}`,
    "option redispatch 1",
    "retry-on conn-failure empty-response",
    // HAProxy's own 502/504, and its 503 for "no instance could be reached" (made a 502 by the frontend).
    `http-error status 502 ${pageHeaders("endpoint_failure")}`,
    `http-error status 503 ${pageHeaders("endpoint_failure")}`,
    `http-error status 504 ${pageHeaders("endpoint_timeout")}`,
  ]);
  const pool = section("defaults pool from base", ["balance roundrobin"]);
  return [base, pool];
}

function frontendSection(s: HaproxySettings): string {
  const binds = [`bind ${serverAddress(s.listenHost, s.listenPort)}`];
  if (s.tls !== undefined && s.files.crtList !== undefined) {
    binds.push(`bind ${serverAddress(s.listenHost, s.tls.port)} ssl crt-list ${s.files.crtList}${s.tls.strictSni ? " strict-sni" : ""}`);
  }
  const trusted = s.trustedProxies.length > 0 ? `acl trusted src ${s.trustedProxies.join(" ")}` : "acl trusted always_false";
  return section("frontend router from base", [
    ...binds,
    trusted,
    "acl upgrade hdr(connection) -m sub -i upgrade",
    "acl has_body req.hdr(transfer-encoding) -m found",
    "acl has_body req.hdr_val(content-length) gt 0",
    "acl safe_method method GET HEAD OPTIONS TRACE",
    // A request that may have changed something is never replayed after the instance saw it.
    "http-request disable-l7-retry if !safe_method || has_body",
    "http-request set-var(txn.host) req.hdr(host),field(1,:),regsub(\\.$,),lower",
    "http-request set-header X-Request-Id %[uuid] unless { req.hdr(x-request-id) -m found }",
    "http-request set-var(txn.reqid) req.hdr(x-request-id)",
    "http-request capture var(txn.host) len 253",
    "http-request capture var(txn.reqid) len 200",
    "http-request capture req.fhdr(referer) len 200",
    "http-request capture req.fhdr(user-agent) len 200",
    "http-request capture req.hdr(content-length) len 20",
    // From anyone but a trusted proxy, what it claims about the client is replaced by what the router saw.
    "http-request del-header X-Forwarded-For unless trusted",
    "http-request del-header X-Forwarded-Proto unless trusted",
    "http-request del-header X-Forwarded-Host unless trusted",
    "http-request del-header Forwarded unless trusted",
    // What a trusted proxy said (nothing from anyone else), before HAProxy appends the client.
    "http-request capture req.fhdr(x-forwarded-for) len 200",
    "option forwardfor",
    "http-request set-header X-Forwarded-Proto https if { ssl_fc } !{ req.hdr(x-forwarded-proto) -m found }",
    "http-request set-header X-Forwarded-Proto http if !{ ssl_fc } !{ req.hdr(x-forwarded-proto) -m found }",
    "http-request capture req.fhdr(x-forwarded-proto) len 16",
    "http-request set-header X-Forwarded-Host %[req.hdr(host)] if { req.hdr(host) -m found } !{ req.hdr(x-forwarded-host) -m found }",
    "http-request lua.berth_hop_by_hop if { req.hdr(connection) -m reg -i ^(?!(keep-alive|close|upgrade)$) }",
    "http-request del-header Keep-Alive",
    "http-request del-header Proxy-Connection",
    "http-request del-header TE",
    "http-request del-header Trailer",
    "http-request del-header HTTP2-Settings",
    ...returnPage("table_not_loaded", `!{ str(loaded),map(${s.files.stateMap}) -m found }`),
    // Host, lower-cased path and "/", by longest prefix (map_beg is a prefix tree): plan.ts's keys.
    "http-request set-var(txn.path) path,lower",
    "http-request set-var(txn.key) var(txn.host),concat(,txn.path,/)",
    `http-request set-var(txn.backend) var(txn.key),map_beg(${s.files.routesMap})`,
    `http-request set-var(txn.backend) var(txn.key),map_beg(${s.files.idleMap}) unless { var(txn.backend) -m found }`,
    ...returnPage("unknown_route", "!{ var(txn.backend) -m found }"),
    ...returnPage("no_endpoints", `{ var(txn.backend) -m str ${NO_ENDPOINTS} }`),
    // Upgraded connections (WebSockets) per route, counted while they are open.
    "http-request track-sc0 var(txn.host) table tunnels if upgrade",
    ...returnPage("tunnel_limit", `upgrade { sc0_conn_cur gt ${s.maxTunnelsPerRoute} }`),
    // An instance's answer no client may be sent (HAProxy's parser lets these through): the router's 502 instead.
    "http-response set-var(txn.invalid) bool(true) if { status lt 100 } || { res.hdrs -m reg [\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f] }",
    // 1xx answers before the final one: more than the Node path's 5 is a flood.
    "http-response set-var(txn.informational) int(0) if { status lt 200 } !{ var(txn.informational) -m found }",
    "http-response set-var(txn.informational) var(txn.informational),add(1) if { status lt 200 }",
    "http-response set-var(txn.invalid) bool(true) if { var(txn.informational) -m int gt 5 }",
    "http-response deny deny_status 502 if { var(txn.invalid) -m found }",
    "http-after-response set-status 502 reason \"Bad Gateway\" if { status 503 } !{ var(txn.error) -m found }",
    "use_backend %[var(txn.backend)]",
  ]);
}

/** The whole configuration for `pool` (one entry per backend: its servers). */
export function renderHaproxyConfig(s: HaproxySettings, pool: readonly (readonly HaproxyServer[])[]): string {
  const tunnels = section("backend tunnels from base", ["stick-table type string len 253 size 100k store conn_cur"]);
  const backends = pool.map((servers, i) =>
    section(
      `backend ${backendName(i)} from pool`,
      servers.map((server) => `server ${server.name} ${serverAddress(server.address, server.port)}`),
    ),
  );
  return `${[globalSection(s), ...defaultsSections(s), frontendSection(s), tunnels, ...backends].join("\n\n")}\n`;
}
