/**
 * @module One JSON line per request (pino): what an operator greps for when an
 * app misbehaves. The query string is left out: it often carries secrets.
 */
import type { Logger } from "pino";

export interface AccessRecord {
  readonly host: string;
  readonly method: string | undefined;
  readonly url: string | undefined;
  /** 499 (nginx's code) when the client went away before any response. */
  readonly status: number;
  /** `address:port` of the last instance tried, null when none was. */
  readonly upstream: string | null;
  /** Instances tried (more than 1 after connect failures). */
  readonly attempts: number;
  /** When the request arrived and when it ended: ms on performance.now()'s clock (performance.timeOrigin + value = epoch ms). */
  readonly startedAt: number;
  readonly now: number;
  readonly requestId: string;
  /** Why the router answered or cut the exchange itself, when it did (router error: upstream error code). */
  readonly error: string | undefined;
  // What the app's RTR line (app-log-shipper.ts) shows besides; "-" where absent, as Gorouter writes.
  /** "HTTP/1.1". */
  readonly protocol?: string;
  /** Body bytes read from the client and written to it. */
  readonly bytesReceived?: number;
  readonly bytesSent?: number;
  readonly referer?: string;
  readonly userAgent?: string;
  /** The client's `address:port` as the router saw it. */
  readonly remoteAddress?: string;
  /** X-Forwarded-For and X-Forwarded-Proto as sent to the instance. */
  readonly forwardedFor?: string;
  readonly forwardedProto?: string;
}

export const CLIENT_CLOSED_REQUEST = 499;

export function logAccess(log: Logger, r: AccessRecord): void {
  const url = r.url ?? "";
  const q = url.indexOf("?");
  log.info(
    {
      host: r.host,
      method: r.method,
      path: q === -1 ? url : url.slice(0, q),
      status: r.status,
      upstream: r.upstream,
      attempts: r.attempts,
      duration_ms: Math.round((r.now - r.startedAt) * 1000) / 1000,
      request_id: r.requestId,
      error: r.error,
    },
    "request",
  );
}

/** The errno-style code of a socket error (ECONNREFUSED...), or its class name. */
export function errorCode(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === "string" ? code : err.name;
}
