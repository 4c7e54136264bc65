/**
 * @module HAProxy's access line (config.ts's log-format) → the router's
 * {@link AccessRecord}, so both data paths log, count and ship (RTR lines)
 * requests the same way. Pure.
 *
 * The termination state (`%tsc`, HAProxy's two letters: who ended the session
 * and in which phase) says what the Node path's error says:
 * - `L` (HAProxy answered itself): the router error the config recorded.
 * - `SC`/`sC` (connecting failed or timed out): endpoint_failure.
 * - `sH` (no response head in time): endpoint_timeout.
 * - `SH`/`PH` (the instance closed, or answered what HAProxy refused): endpoint_failure.
 * - `SD`/`sD` after a response began: upstream_aborted.
 * - `C?` before any response: the client left, 499 as on the Node path.
 */
import { CLIENT_CLOSED_REQUEST, type AccessRecord } from "../access-log";
import { ACCESS_MARKER, CAPTURES } from "./config";

const FIELDS = 16;

function errorFor(state: string, status: number, routerError: string): string | undefined {
  const [who, phase] = [state[0], state[1]];
  if (routerError !== "" && routerError !== "-") return routerError;
  if (who === "s" && phase === "C") return "endpoint_failure: ETIMEDOUT";
  if (who === "S" && phase === "C") return "endpoint_failure: ECONNREFUSED";
  if (who === "s" && phase === "H") return "endpoint_timeout: ETIMEDOUT";
  if (who === "S" && phase === "H") return "endpoint_failure: ECONNRESET";
  if (who === "P" && phase === "H") return "endpoint_failure: invalid_response";
  if ((who === "S" || who === "s") && phase === "D") return "upstream_aborted";
  if (who === "C" && status === CLIENT_CLOSED_REQUEST) return "client_closed";
  return undefined;
}

/** `{a|b|…}` → its fields, `#XX` decoded; null when it is not one of CAPTURES.length fields. */
function captures(block: string): string[] | null {
  if (!block.startsWith("{") || !block.endsWith("}")) return null;
  const fields = block.slice(1, -1).split("|");
  if (fields.length !== CAPTURES.length) return null;
  return fields.map((f) => (f.includes("#") ? f.replace(/#([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))) : f));
}

function address(ip: string, port: string): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function present(value: string): string | undefined {
  return value === "" ? undefined : value;
}

/**
 * The record of one access line read at `receivedAt` (performance.now()),
 * or null when `line` is not one (HAProxy's other messages).
 */
export function parseAccessLine(line: string, receivedAt: number): AccessRecord | null {
  const f = line.split("\t");
  if (f.length !== FIELDS || f[0] !== ACCESS_MARKER) return null;
  const [, method, uri, version, statusText, serverIp, serverPort, retries, total, , bytesOut, clientIp, clientPort, state, routerError, block] = f as [string, ...string[]] as string[];
  const captured = captures(block!);
  if (captured === null) return null;
  const [host, requestId, referer, userAgent, contentLength, forwardedIn, forwardedProto] = captured as [string, string, string, string, string, string, string];
  const clientLeft = state![0] === "C" && "RQCH".includes(state![1]!);
  const status = clientLeft || statusText === "-1" ? CLIENT_CLOSED_REQUEST : Number(statusText);
  // `%rc` is "+N" when a retry went to another server; N retries, N + 1 attempts.
  const reachedServer = serverIp !== "-" && serverIp !== "<NOSRV>";
  return {
    host,
    method,
    url: uri,
    status,
    upstream: reachedServer ? address(serverIp!, serverPort!) : null,
    attempts: reachedServer ? Math.abs(Number(retries!.replace("+", ""))) + 1 : 0,
    // HAProxy writes the line as the request ends: it began its total time before.
    startedAt: receivedAt - Math.max(0, Number(total)),
    now: receivedAt,
    requestId,
    error: errorFor(state!, status, routerError!),
    protocol: version,
    // The request body by its Content-Length (HAProxy counts the head in); what went out, head included.
    bytesReceived: Number(contentLength) || 0,
    bytesSent: Number(bytesOut),
    referer: present(referer),
    userAgent: present(userAgent),
    remoteAddress: `${clientIp}:${clientPort}`,
    // As sent to the instance: what a trusted proxy said, then the client (option forwardfor).
    forwardedFor: forwardedIn === "" ? clientIp : `${forwardedIn}, ${clientIp}`,
    forwardedProto: present(forwardedProto),
  };
}
