/**
 * @module A small CC v3 client for the CLI. Errors keep the API's CF-* title and
 * detail so commands can print them as the cf CLI does.
 */
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

export class Api {
  constructor(
    readonly target: string,
    private readonly token: string | undefined,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  static fromConfig(config: Config, fetchImpl?: typeof fetch): Api {
    if (!config.api) throw new NotLoggedIn("No API endpoint set. Use 'berth api' to set an endpoint.");
    if (!config.token) throw new NotLoggedIn("Not logged in. Use 'berth login' to log in.");
    return new Api(config.api, config.token, fetchImpl);
  }

  async request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await this.fetchImpl(new URL(path, this.target), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, "ConnectionError", `Cannot reach the API at ${this.target}: ${(e as Error).cause ?? (e as Error).message}`);
    }
    const text = await res.text();
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
    return json as T;
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
