/**
 * @module Where route tables come from. The proxy only needs "the next table
 * after version V"; {@link httpTableSource} gets it from the control plane's
 * long-poll, tests may pass any function.
 */
import { request } from "undici";
import { z } from "zod";
import { routeTableSchema, type RouteTable } from "../../shared/protocol/route-table";
import { VersionWatch, watched } from "../watch/version-watch";

/**
 * Resolves with the table when it differs from `after` (or `after` is
 * undefined), with null when the control plane answered "unchanged" (204),
 * and rejects when the table could not be had.
 */
export type TableSource = (after: number | undefined, signal: AbortSignal) => Promise<RouteTable | null>;

export interface HttpTableSourceOptions {
  /** Base URL of the control plane, e.g. `http://127.0.0.1:8787`. */
  readonly apiUrl: string;
  /** A router token (role `router`). */
  readonly token: string;
  /** Longer than the server's hold (50 s) so a held poll is not cut by us. */
  readonly requestTimeoutMs: number;
}

/** A route-table request the control plane refused or answered with something unusable. */
export class RouteTableError extends Error {
  constructor(
    message: string,
    readonly status: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "RouteTableError";
  }
}

const MAX_ERROR_DETAIL = 300;

/** `GET {apiUrl}/v3/routes/table?after=VERSION` with the router's bearer token. */
export function httpTableSource(options: HttpTableSourceOptions): TableSource {
  const base = new URL("/v3/routes/table", options.apiUrl);
  const authorization = `bearer ${options.token}`;
  return async (after, signal) => {
    const url = new URL(base);
    if (after !== undefined) url.searchParams.set("after", String(after));
    const res = await request(url, {
      method: "GET",
      headers: { authorization, accept: "application/json" },
      signal,
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
    });
    if (res.statusCode === 204) {
      await res.body.dump();
      return null;
    }
    const text = await res.body.text();
    if (res.statusCode !== 200) {
      throw new RouteTableError(
        `GET ${url.pathname}: HTTP ${res.statusCode}: ${text.slice(0, MAX_ERROR_DETAIL)}`,
        res.statusCode,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (cause) {
      throw new RouteTableError(`GET ${url.pathname}: the body is not JSON`, res.statusCode, { cause });
    }
    const parsed = routeTableSchema.safeParse(body);
    if (!parsed.success) {
      throw new RouteTableError(`GET ${url.pathname}: invalid route table: ${z.prettifyError(parsed.error)}`, res.statusCode);
    }
    return parsed.data;
  };
}

/**
 * {@link httpTableSource} waiting on a WebSocket watch of the table's version
 * while the socket is up (the control plane's channel then hibernates between
 * changes), long-polling while it is down. `stop` closes the watch.
 */
export function watchedTableSource(
  options: HttpTableSourceOptions,
  log?: (msg: string, extra: Record<string, unknown>) => void,
): { source: TableSource; stop: () => void } {
  const watch = new VersionWatch({ url: new URL("/v3/routes/table/watch", options.apiUrl), credential: options.token, log }).start();
  const poll = httpTableSource(options);
  const source = watched(watch, (after, signal) => poll(after, signal ?? new AbortController().signal), options.requestTimeoutMs);
  return { source: (after, signal) => source(after, signal), stop: () => watch.stop() };
}
