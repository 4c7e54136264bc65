/**
 * @module The router's own answers (Gorouter's error pages): a short plain-text
 * body and an `X-Berth-Router-Error` header naming the cause, so a client, a
 * test or an operator can tell the router's 502 from an app's 502.
 */
import type { ServerResponse } from "node:http";

export type RouterError =
  | "unknown_route" // 404: no route has this host
  | "no_endpoints" // 503: the route exists, nothing runs behind it
  | "tunnel_limit" // 503: the route has as many upgraded connections open as it may
  | "table_not_loaded" // 503: no route table yet (just started, control plane unreachable)
  | "endpoint_failure" // 502: every attempt failed, or the instance broke the exchange
  | "endpoint_timeout"; // 504: the instance did not answer in time

const STATUS: Record<RouterError, number> = {
  unknown_route: 404,
  no_endpoints: 503,
  tunnel_limit: 503,
  table_not_loaded: 503,
  endpoint_failure: 502,
  endpoint_timeout: 504,
};

export const REASON: Record<number, string> = { 404: "Not Found", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout" };

export const ROUTER_ERROR_HEADER = "X-Berth-Router-Error";

function describe(error: RouterError, host: string): string {
  switch (error) {
    case "unknown_route":
      return `Requested route ('${host}') does not exist.`;
    case "no_endpoints":
      return `Requested route ('${host}') has no available instances.`;
    case "tunnel_limit":
      return `Requested route ('${host}') has too many open connections.`;
    case "table_not_loaded":
      return "The router has not received its route table yet.";
    case "endpoint_failure":
      return `The instance for route ('${host}') failed to answer.`;
    case "endpoint_timeout":
      return `The instance for route ('${host}') did not answer in time.`;
  }
}

/** The page's text; the HAProxy config renders it with log-format expressions for host and id. */
export function pageBody(error: RouterError, host: string, requestId: string): string {
  const status = STATUS[error];
  return `${status} ${REASON[status]}: ${describe(error, host)}\nRequest ID: ${requestId}\n`;
}

export function statusOf(error: RouterError): number {
  return STATUS[error];
}

/** Answers an HTTP request with the router's page for `error`. */
export function sendPage(res: ServerResponse, error: RouterError, host: string, requestId: string): void {
  const text = pageBody(error, host, requestId);
  const status = STATUS[error];
  // The reason phrase given, not left to Node: a refused writeHead of the instance's answer may have left its own.
  res.writeHead(status, REASON[status], [
    "Content-Type", "text/plain; charset=utf-8",
    "Content-Length", String(Buffer.byteLength(text)),
    "X-Content-Type-Options", "nosniff",
    ROUTER_ERROR_HEADER, error,
    "X-Request-Id", requestId,
  ]);
  res.end(text);
}

/** The same page as raw HTTP/1.1 bytes, for a socket taken over by an upgrade request. */
export function rawPage(error: RouterError, host: string, requestId: string): string {
  const text = pageBody(error, host, requestId);
  const status = STATUS[error];
  return (
    `HTTP/1.1 ${status} ${REASON[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(text)}\r\nX-Content-Type-Options: nosniff\r\n` +
    `${ROUTER_ERROR_HEADER}: ${error}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${text}`
  );
}
