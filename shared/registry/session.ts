/**
 * @module A conversation with one registry about one repository (OCI
 * distribution spec): the `/v2/` ping that picks the scheme and learns the
 * challenge, Basic or bearer-token auth (anonymous or with a username and
 * password), per-request timeouts, bounded retries, and redirects followed
 * by hand so `Authorization` never leaves the registry's origin (blob GETs
 * are often sent to S3/CDN URLs that refuse a second auth mechanism).
 *
 * It takes `fetch` as a parameter: the Worker passes the global one, a cell
 * one built on undici with the admin's CA bundle. Nothing here is
 * runtime-specific beyond fetch, AbortController, setTimeout and Web Crypto.
 * Every URL it fetches (the registry, each redirect, the token realm) passes
 * the same rule first (targets.ts): no https→http downgrade, no loopback,
 * link-local or private address the admin did not list.
 *
 * @example
 * const s = await openRegistrySession(parseReference("127.0.0.1:5000/app:1"), { fetch, schemes: ["http"], listedRegistries: ["127.0.0.1:5000"] });
 * const res = await blobRequest(s, "sha256:…"); // a verified-by-the-caller stream
 */
import type { Credentials } from "../protocol/image";
import { type Challenge, parseChallenges, pickChallenge } from "./challenge";
import { registryListed } from "./allow-list";
import { RegistryError } from "./errors";
import { formatReference, type ImageReference } from "./reference";
import { DEFAULT_RETRY, parseRetryAfter, retryDelay, type RetryPolicy } from "./retry";
import { refusedTarget } from "./targets";

export type Scheme = "https" | "http";

export interface RegistryClientOptions {
  fetch: typeof fetch;
  /**
   * The admin's listed registries (targets.ts listedRegistries): the only
   * loopback, link-local or private hosts this client may fetch from.
   */
  listedRegistries: readonly string[];
  credentials?: Credentials;
  /** Schemes to try in order (see registrySchemes). Default https only. */
  schemes?: readonly Scheme[];
  /** Time allowed for each request until its headers (and, for manifests, configs and tokens, its body). */
  requestTimeoutMs?: number;
  /**
   * The whole operation's budget: when it aborts, everything stops and fails with `timeout`, or, when its
   * owner aborted it for a reason of its own (an Error other than a timeout or a bare abort), with that reason.
   */
  signal?: AbortSignal;
  retry?: Partial<RetryPolicy>;
  /** Waits between retries; tests pass one that records instead of sleeping. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => Date;
  /** Largest token response accepted (64 KiB, as ggcr). */
  maxTokenBytes?: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 5;

/**
 * Which schemes to try for a registry: https only, unless the admin's insecure
 * list names it. Then a runtime that can skip TLS verification (a cell's
 * undici fetch) tries https without verification and falls back to plain
 * http, as Docker does; the Worker cannot skip verification, so for it an
 * insecure registry means plain http.
 */
export function registrySchemes(host: string, insecureRegistries: readonly string[], runtime: { canSkipTlsVerify: boolean }): Scheme[] {
  if (!registryListed(host, insecureRegistries)) return ["https"];
  return runtime.canSkipTlsVerify ? ["https", "http"] : ["http"];
}

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });

type Auth = { kind: "none" } | { kind: "basic"; header: string } | { kind: "bearer"; challenge: Challenge; header: string };

/** A response together with the means to stop its request timer (once its body is read, or at once for streams). */
export interface TimedResponse {
  res: Response;
  disarm(): void;
}

export interface RegistrySession {
  readonly ref: ImageReference;
  /** `https://host` or `http://host`: the scheme the ping settled on. */
  readonly baseUrl: string;
  /** GET a path under the registry (or an absolute URL), authenticated, retried, redirects followed. */
  get(pathOrUrl: string, headers?: Record<string, string>): Promise<TimedResponse>;
  /** A user-readable name of the image for messages. */
  readonly what: string;
  readonly options: Required<Pick<RegistryClientOptions, "fetch" | "requestTimeoutMs" | "now">> & RegistryClientOptions & { retry: RetryPolicy };
}

function base64(text: string): string {
  let bin = "";
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin);
}

const basicHeader = (c: Credentials) => `Basic ${base64(`${c.username}:${c.password}`)}`;

/** Pings the registry and returns a session for `ref`'s repository. */
export async function openRegistrySession(ref: ImageReference, options: RegistryClientOptions): Promise<RegistrySession> {
  const opts = {
    ...options,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    now: options.now ?? (() => new Date()),
    retry: { ...DEFAULT_RETRY, ...options.retry },
  };
  const schemes = options.schemes?.length ? options.schemes : (["https"] as const);
  const what = `"${formatReference(ref)}"`;
  let lastError: RegistryError | undefined;
  for (const [i, scheme] of schemes.entries()) {
    const baseUrl = `${scheme}://${ref.host}`;
    const conn = new Connection(ref, baseUrl, what, opts);
    try {
      // Only the last scheme gets retries: an earlier one failing is the expected way to fall back.
      await conn.ping(i === schemes.length - 1);
      return conn;
    } catch (e) {
      if (!(e instanceof RegistryError) || e.code !== "unreachable" || i === schemes.length - 1) throw e;
      lastError = e;
    }
  }
  throw lastError ?? new RegistryError("unreachable", `No way to reach registry ${ref.host}.`);
}

class Connection implements RegistrySession {
  private auth: Auth = { kind: "none" };

  constructor(
    readonly ref: ImageReference,
    readonly baseUrl: string,
    readonly what: string,
    readonly options: RegistrySession["options"],
  ) {}

  private get host() {
    return this.ref.host;
  }

  /** `GET /v2/`: 200 needs no auth, 401 carries the challenge to answer. */
  async ping(withRetries: boolean): Promise<void> {
    const { res, disarm } = await this.retrying(async () => this.throwIfRetryable(await this.send(`${this.baseUrl}/v2/`, {}, false), "GET /v2/"), withRetries);
    await res.body?.cancel();
    disarm();
    if (res.status === 200) return;
    if (res.status === 401) {
      await this.authenticate(res.headers.get("www-authenticate"));
      return;
    }
    // A TLS server answers a plain-HTTP request with 400 (Go: "Client sent an HTTP request to an HTTPS server").
    if (res.status === 400 && this.baseUrl.startsWith("http:")) {
      throw new RegistryError("tls_required", `Registry ${this.host} speaks TLS, but it is listed as insecure and this side can only use plain HTTP for it.`);
    }
    if (res.status === 404) throw new RegistryError("unreachable", `${this.baseUrl} does not serve the registry API (GET /v2/ answered 404).`);
    throw this.statusError(res, "GET /v2/");
  }

  async get(pathOrUrl: string, headers: Record<string, string> = {}): Promise<TimedResponse> {
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${this.baseUrl}${pathOrUrl}`;
    return this.retrying(async () => {
      let timed = await this.send(url, headers, true);
      if (timed.res.status === 401) {
        // The token may lack this scope or have expired: answer the new challenge once.
        const challenge = timed.res.headers.get("www-authenticate");
        await timed.res.body?.cancel();
        timed.disarm();
        await this.authenticate(challenge);
        timed = await this.send(url, headers, true);
        if (timed.res.status === 401) {
          await timed.res.body?.cancel();
          timed.disarm();
          throw this.unauthorized();
        }
      }
      return this.throwIfRetryable(timed, `GET ${new URL(url).pathname}`);
    }, true);
  }

  /** 429 and 5xx become errors retrying() knows how to wait for. */
  private async throwIfRetryable(timed: TimedResponse, what: string): Promise<TimedResponse> {
    if (timed.res.status !== 429 && timed.res.status < 500) return timed;
    await timed.res.body?.cancel();
    timed.disarm();
    throw this.statusError(timed.res, what);
  }

  private unauthorized(): RegistryError {
    return this.options.credentials
      ? new RegistryError("unauthorized", `The registry ${this.host} refused the username and password given for ${this.what}.`)
      : new RegistryError("unauthorized", `The registry ${this.host} requires a username and password to pull ${this.what}.`);
  }

  private statusError(res: Response, what: string): RegistryError {
    if (res.status === 429) {
      const retryAfterSeconds = parseRetryAfter(res.headers.get("retry-after"), this.options.now());
      const after = retryAfterSeconds === undefined ? "" : ` (it asks to retry after ${retryAfterSeconds} s)`;
      return new RegistryError("rate_limited", `The registry ${this.host} is rate-limiting pulls${after}.`, { retryAfterSeconds });
    }
    if (res.status === 401 || res.status === 403) return this.unauthorized();
    return new RegistryError("unreachable", `The registry ${this.host} answered ${what} with ${res.status} ${res.statusText}.`.replace(/ \./, "."));
  }

  /** Runs `op`, retrying the failures retryDelay allows, unless the overall budget is spent. */
  private async retrying<T>(op: () => Promise<T>, withRetries: boolean): Promise<T> {
    const policy = withRetries ? this.options.retry : { ...this.options.retry, retries: 0 };
    const sleep = this.options.sleep ?? defaultSleep;
    for (let attempt = 0; ; attempt++) {
      try {
        return await op();
      } catch (e) {
        if (!(e instanceof RegistryError) || this.options.signal?.aborted) throw e;
        const delay = retryDelay(attempt, e, policy);
        if (delay === null) throw e;
        await sleep(delay, this.options.signal);
        if (this.options.signal?.aborted) throw this.stopped(e);
      }
    }
  }

  /** Why the operation stopped once its signal aborted: its owner's own reason, else the budget ran out. */
  private stopped(cause?: unknown): unknown {
    const reason: unknown = this.options.signal?.reason;
    if (reason instanceof Error && reason.name !== "TimeoutError" && reason.name !== "AbortError") return reason;
    return new RegistryError("timeout", `Resolving ${this.what} ran out of time (registry ${this.host}).`, { cause });
  }

  /** One request with the request timer armed, following redirects; Authorization only on the registry's origin. */
  private async send(url: string, headers: Record<string, string>, withAuth: boolean): Promise<TimedResponse> {
    const origin = new URL(this.baseUrl).origin;
    let current = new URL(url);
    let from: URL | undefined;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const h = new Headers(headers);
      if (withAuth && current.origin === origin && this.auth.kind !== "none") h.set("authorization", this.auth.header);
      const timed = await this.timedFetch(current, { headers: h }, from);
      const { res } = timed;
      const location = res.headers.get("location");
      if ([301, 302, 303, 307, 308].includes(res.status) && location) {
        await res.body?.cancel();
        timed.disarm();
        from = current;
        current = new URL(location, current);
        continue;
      }
      return timed;
    }
    throw new RegistryError("unreachable", `The registry ${this.host} redirected more than ${MAX_REDIRECTS} times.`);
  }

  /**
   * fetch with a timer that aborts it; the timer stays armed until `disarm` so
   * body reads are bounded too. `url` must pass the target rule (reached from
   * `from`, for a redirect or a realm) or nothing is sent.
   */
  private async timedFetch(url: URL, init: RequestInit, from?: URL): Promise<TimedResponse> {
    const { signal } = this.options;
    if (signal?.aborted) throw this.stopped();
    const refused = refusedTarget(url, { listed: this.options.listedRegistries, ...(from ? { from } : {}) });
    if (refused) throw new RegistryError("refused_target", `Pulling ${this.what} would fetch from ${url.origin}, which is refused: ${refused}.`);
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; controller.abort(); }, this.options.requestTimeoutMs);
    const onBudget = () => controller.abort();
    signal?.addEventListener("abort", onBudget, { once: true });
    const disarm = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onBudget);
    };
    try {
      const res = await this.options.fetch(url.toString(), { ...init, method: "GET", redirect: "manual", signal: controller.signal });
      return { res, disarm };
    } catch (cause) {
      disarm();
      if (signal?.aborted) throw this.stopped(cause);
      if (cause instanceof RegistryError) throw cause;
      if (timedOut) throw new RegistryError("timeout", `The registry ${url.host} did not answer within ${this.options.requestTimeoutMs} ms.`, { cause });
      throw new RegistryError("unreachable", `Cannot connect to ${url.origin} (connection refused, reset, or a TLS failure).`, { cause, noAnswer: true });
    }
  }

  /** Answers a challenge: Basic with the credentials, or a bearer token from the realm. */
  private async authenticate(header: string | null): Promise<void> {
    const challenge = pickChallenge(parseChallenges(header));
    if (!challenge) {
      throw new RegistryError("unauthorized", `The registry ${this.host} asks for authentication it does not describe (WWW-Authenticate: ${header ?? "missing"}).`);
    }
    const { credentials } = this.options;
    if (challenge.scheme === "basic") {
      if (!credentials) throw this.unauthorized();
      this.auth = { kind: "basic", header: basicHeader(credentials) };
      return;
    }
    const token = await this.fetchToken(challenge);
    this.auth = { kind: "bearer", challenge, header: `Bearer ${token}` };
  }

  /** GET realm?service=…&scope=… (the docker token spec; GET because many registries lack the OAuth2 POST). */
  private async fetchToken(challenge: Challenge): Promise<string> {
    const realmText = challenge.params.realm;
    let realm: URL;
    try {
      realm = new URL(realmText ?? "");
    } catch (cause) {
      throw new RegistryError("unauthorized", `The registry ${this.host} names a token service that is not a URL (${realmText ?? "none"}).`, { cause });
    }
    if (challenge.params.service) realm.searchParams.set("service", challenge.params.service);
    const scopes = new Set([`repository:${this.ref.repository}:pull`]);
    if (challenge.params.scope) for (const s of challenge.params.scope.split(" ")) scopes.add(s);
    for (const s of scopes) realm.searchParams.append("scope", s);

    const headers: Record<string, string> = {};
    if (this.options.credentials) headers.authorization = basicHeader(this.options.credentials);
    // The realm is reached from the registry: an http realm only for a registry already spoken to over http (ggcr's hardening).
    const { res, disarm } = await this.retrying(() => this.timedFetch(realm, { headers }, new URL(this.baseUrl)), true);
    try {
      if (res.status === 401 || res.status === 403) throw this.unauthorized();
      if (res.status !== 200) throw new RegistryError("unreachable", `The token service of ${this.host} answered ${res.status}.`);
      const body = await readLimited(res, this.options.maxTokenBytes ?? 64 * 1024, `The token from ${realm.host}`);
      let token: unknown;
      try {
        const json: unknown = JSON.parse(new TextDecoder().decode(body));
        token = typeof json === "object" && json !== null ? ("token" in json ? json.token : "access_token" in json ? json.access_token : undefined) : undefined;
      } catch (cause) {
        throw new RegistryError("unauthorized", `The token service of ${this.host} sent something that is not JSON.`, { cause });
      }
      if (typeof token !== "string" || !token) throw new RegistryError("unauthorized", `The token service of ${this.host} sent no token.`);
      return token;
    } finally {
      disarm();
    }
  }
}

/**
 * Reads a whole body, refusing more than `limit` bytes (by Content-Length
 * first, then while streaming, so a lying server cannot exhaust memory).
 */
export async function readLimited(res: Response, limit: number, what: string): Promise<Uint8Array<ArrayBuffer>> {
  const tooLarge = () => new RegistryError("too_large", `${what} is larger than the ${limit} bytes accepted.`);
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel();
    throw tooLarge();
  }
  if (!res.body) return new Uint8Array(new ArrayBuffer(0));
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel();
        throw tooLarge();
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof RegistryError) throw e;
    throw new RegistryError("unreachable", `The connection broke while reading ${what}.`, { cause: e });
  }
  const out = new Uint8Array(new ArrayBuffer(total));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * GET a blob with the session's auth, for the image store to stream and
 * verify itself (Web Crypto cannot hash a stream). The request timer covers
 * only the wait for headers; the body is the caller's to bound. Answers the
 * response (200, or 206 for a Range request) or throws not_found and friends.
 */
export async function blobRequest(session: RegistrySession, digest: string, headers: Record<string, string> = {}): Promise<Response> {
  const { res, disarm } = await session.get(`/v2/${session.ref.repository}/blobs/${digest}`, headers);
  disarm();
  if (res.status === 200 || res.status === 206) return res;
  await res.body?.cancel();
  if (res.status === 404) throw new RegistryError("not_found", `Blob ${digest} of ${session.what} is not in the registry.`);
  if (res.status === 403) throw new RegistryError("unauthorized", `The registry ${session.ref.host} denied access to blob ${digest} of ${session.what}.`);
  throw new RegistryError("unreachable", `The registry ${session.ref.host} answered ${res.status} for blob ${digest}.`);
}
