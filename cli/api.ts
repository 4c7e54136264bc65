/**
 * @module A small CC v3 client for the CLI. Errors keep the API's CF-* title and
 * detail so commands can print them as the cf CLI does. undici's fetch, so an
 * endpoint whose certificate is not verified (`--skip-ssl-validation`) gets an
 * Agent of its own.
 */
import { Agent, fetch, type Dispatcher } from "undici";
import type { Config } from "./config";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly code?: number,
  ) {
    super(`${title}: ${detail}`);
  }
}

/** The CLI was used before `berth api` / `berth login`. */
export class NotLoggedIn extends Error {}

export interface Page<T> {
  pagination: { total_results: number; next: { href: string } | null };
  resources: T[];
}

export interface ApiOptions {
  skipTlsValidation?: boolean;
  /** Sees every request the CLI makes (method and path), e.g. to count them. */
  onRequest?: (method: string, path: string) => void;
  /** Gets one line per answered request (as cf's CF_TRACE, shorter): when, method, path, status, milliseconds. */
  trace?: (line: string) => void;
}

/** Certificate errors Node reports when it cannot verify the server (cf: "Invalid SSL Cert"). */
const TLS_VERIFY_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED", "ERR_TLS_CERT_ALTNAME_INVALID", "CERT_UNTRUSTED",
]);

export class Api {
  private readonly dispatcher?: Dispatcher;

  constructor(
    readonly target: string,
    private readonly token: string | undefined,
    private readonly opts: ApiOptions = {},
  ) {
    if (opts.skipTlsValidation) this.dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
  }

  static fromConfig(config: Config, opts: Omit<ApiOptions, "skipTlsValidation"> = {}): Api {
    if (!config.api) throw new NotLoggedIn("No API endpoint set. Use 'berth api' to set an endpoint.");
    if (!config.token) throw new NotLoggedIn("Not logged in. Use 'berth login' to log in.");
    return new Api(config.api, config.token, { ...opts, skipTlsValidation: config.skipTlsValidation });
  }

  async request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    return (await this.send<T>(method, path, body === undefined ? undefined : { type: "application/json", text: JSON.stringify(body) })).json;
  }

  /** Sends a YAML body (a manifest); the answer's Location is the job to follow (CC's 202). */
  async postYaml(path: string, yaml: string): Promise<string | null> {
    return (await this.send("POST", path, { type: "application/x-yaml", text: yaml })).location;
  }

  private async send<T>(method: string, path: string, body: { type: string; text: string } | undefined): Promise<{ json: T; location: string | null }> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["content-type"] = body.type;
    this.opts.onRequest?.(method, path);
    const sent = performance.now();
    let res: Awaited<ReturnType<typeof fetch>>;
    try {
      res = await fetch(new URL(path, this.target), {
        method,
        headers,
        body: body?.text,
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
      });
    } catch (e) {
      const cause = (e as Error).cause as NodeJS.ErrnoException | undefined;
      if (cause?.code && TLS_VERIFY_CODES.has(cause.code))
        throw new ApiError(0, "InvalidSSLCert", `Invalid SSL Cert for ${this.target} (${cause.message})\nTIP: Use 'berth api --skip-ssl-validation' to continue with an insecure API endpoint`);
      throw new ApiError(0, "ConnectionError", `Cannot reach the API at ${this.target}: ${cause ?? (e as Error).message}`);
    }
    const text = await res.text();
    this.opts.trace?.(`${new Date().toISOString()} ${method} ${path} ${res.status} ${Math.round(performance.now() - sent)}ms`);
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const err = json?.errors?.[0];
      if (err) throw new ApiError(res.status, err.title, err.detail, err.code);
      throw new ApiError(res.status, `HTTP${res.status}`, text.slice(0, 200) || res.statusText);
    }
    return { json: json as T, location: res.headers.get("location") };
  }

  get = <T = any>(path: string) => this.request<T>("GET", path);
  post = <T = any>(path: string, body?: unknown) => this.request<T>("POST", path, body ?? {});
  patch = <T = any>(path: string, body: unknown) => this.request<T>("PATCH", path, body);
  delete = (path: string) => this.request("DELETE", path);

  /** Follows `pagination.next` and returns every resource. */
  async all<T = any>(path: string): Promise<T[]> {
    const out: T[] = [];
    let next: string | null = path;
    while (next) {
      const page: Page<T> = await this.get<Page<T>>(next);
      out.push(...page.resources);
      next = page.pagination?.next?.href ?? null;
    }
    return out;
  }
}
