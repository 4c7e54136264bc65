/**
 * @module The cell's side of the agent protocol over HTTP (docs/architecture.md § Agent
 * protocol). Every call is idempotent; callers retry with backoff.
 */
import { fetch } from "undici";
import { desiredSetSchema, type DesiredSet, type SpecMode } from "../../shared/protocol/desired-set";
import { VersionWatch, watched } from "../watch/version-watch";
import {
  registrationResponseSchema,
  type CellRegistration,
  type RegistrationResponse,
} from "../../shared/protocol/enrollment";
import { heartbeatAnswerSchema, type Heartbeat } from "../../shared/protocol/heartbeat";
import type { InstanceReport } from "../../shared/protocol/instance";
import type { StagingResult } from "../../shared/protocol/staging";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";

/** A staging result without the protocol field (Omit over each member of the union). */
export type StagingOutcome = StagingResult extends infer R ? (R extends unknown ? Omit<R, "protocol"> : never) : never;

export class ControlPlaneError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
  /** 4xx other than 408/429 will not get better by retrying the same request. */
  get permanent(): boolean {
    return this.status >= 400 && this.status < 500 && this.status !== 408 && this.status !== 429;
  }
}

type FetchResponse = Awaited<ReturnType<typeof fetch>>;

async function check(res: FetchResponse, what: string): Promise<unknown> {
  const text = await res.text();
  if (!res.ok) {
    let detail = text.slice(0, 300);
    try {
      const err = JSON.parse(text)?.errors?.[0];
      if (err) detail = `${err.title}: ${err.detail}`;
    } catch {
      // not JSON: keep the text
    }
    throw new ControlPlaneError(res.status, `${what}: HTTP ${res.status} ${detail}`);
  }
  return text ? JSON.parse(text) : undefined;
}

export interface ClientTimeouts {
  /** A request the control plane answers at once; fetch alone would wait up to 300 s for headers on a stalled one. */
  requestMs: number;
  /** The desired-set long poll: the control plane holds it at most 50 s (docs/architecture.md § Agent protocol). */
  longPollMs: number;
}

export const DEFAULT_CLIENT_TIMEOUTS: ClientTimeouts = { requestMs: 30_000, longPollMs: 75_000 };

interface RequestOptions<T> {
  credential?: string;
  signal?: AbortSignal;
  timeoutMs: number;
  /** Reads the answer (default: `check`, the JSON body or a ControlPlaneError). */
  read?: (res: FetchResponse) => Promise<T>;
}

/**
 * One request to the control plane, its body read, all within `timeoutMs`: a
 * connection dropped silently on the way fails the call instead of hanging
 * it, and the caller's retry takes over.
 */
async function request<T>(url: URL, method: string, body: unknown, what: string, opts: RequestOptions<T>): Promise<T> {
  const read = opts.read ?? ((res: FetchResponse) => check(res, what) as Promise<T>);
  // A controller per request, not AbortSignal.any: on Node 20 each combined signal stays referenced by the long-lived one.
  const controller = new AbortController();
  const cancel = () => controller.abort(opts.signal?.reason);
  const timer = setTimeout(() => controller.abort(new Error(`${what}: no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
  opts.signal?.addEventListener("abort", cancel, { once: true });
  try {
    opts.signal?.throwIfAborted();
    const res = await fetch(url, {
      method,
      signal: controller.signal,
      headers: {
        ...(opts.credential === undefined ? {} : { authorization: `Bearer ${opts.credential}` }),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return await read(res);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", cancel);
  }
}

export async function register(
  apiUrl: string, registration: Omit<CellRegistration, "protocol">, timeoutMs = DEFAULT_CLIENT_TIMEOUTS.requestMs,
): Promise<RegistrationResponse> {
  const body = { protocol: PROTOCOL_VERSION, ...registration };
  return registrationResponseSchema.parse(await request(new URL("/v3/cells/register", apiUrl), "POST", body, "register", { timeoutMs }));
}

export class ControlPlaneClient {
  constructor(
    readonly apiUrl: string,
    readonly cellGuid: string,
    private readonly credential: string,
    private readonly timeouts: ClientTimeouts = DEFAULT_CLIENT_TIMEOUTS,
  ) {}

  private call<T>(method: string, path: string, body: unknown, what: string, opts: Partial<RequestOptions<T>> = {}): Promise<T> {
    return request(new URL(path, this.apiUrl), method, body, what, { ...opts, timeoutMs: opts.timeoutMs ?? this.timeouts.requestMs, credential: this.credential });
  }

  private watch: VersionWatch | null = null;

  /**
   * Watches the desired-set version on a WebSocket (the channel can hibernate
   * between changes); `desired` then waits on it instead of holding a long-poll,
   * and long-polls again whenever the socket is down.
   */
  watchDesired(log?: (msg: string, extra: Record<string, unknown>) => void): VersionWatch {
    this.watch?.stop();
    this.watch = new VersionWatch({ url: new URL(`/v3/cells/${this.cellGuid}/desired/watch`, this.apiUrl), credential: this.credential, log }).start();
    return this.watch;
  }

  /**
   * The desired set when it differs from `after`; null when the hold (or the watch's wait) ended unchanged.
   * `specs: "new"` (what the agent asks for): instances the cell took come as references, without their specs.
   */
  async desired(after: number | null, signal?: AbortSignal, specs: SpecMode = "new"): Promise<DesiredSet | null> {
    if (this.watch) return watched(this.watch, (a, s) => this.poll(a ?? null, specs, s), this.timeouts.longPollMs)(after ?? undefined, signal);
    return this.poll(after, specs, signal);
  }

  /** The control plane refused `specs=new` (it predates references): ask as before, for every spec. */
  private specsRefused = false;

  private async poll(after: number | null, specs: SpecMode, signal?: AbortSignal): Promise<DesiredSet | null> {
    const mode = this.specsRefused ? "all" : specs;
    // "all" is the default, left unsaid: a control plane that predates `specs` refuses any parameter it does not know.
    const params = [...(mode === "new" ? ["specs=new"] : []), ...(after === null ? [] : [`after=${after}`])];
    const q = params.length > 0 ? `?${params.join("&")}` : "";
    const read = async (res: FetchResponse) => {
      if (res.status === 204) {
        await res.body?.cancel();
        return null;
      }
      return desiredSetSchema.parse(await check(res, "desired"));
    };
    try {
      return await this.call("GET", `/v3/cells/${this.cellGuid}/desired${q}`, undefined, "desired", { signal, timeoutMs: this.timeouts.longPollMs, read });
    } catch (e) {
      if (mode !== "new" || !(e instanceof ControlPlaneError) || e.status !== 422 || !e.message.includes("specs")) throw e;
      this.specsRefused = true;
      return this.poll(after, "all", signal);
    }
  }

  /** Sends a beat; true when the control plane asks the next one to list the instances. */
  async heartbeat(beat: Omit<Heartbeat, "protocol">, signal?: AbortSignal, timeoutMs?: number): Promise<boolean> {
    const answer = await this.call<unknown>("POST", `/v3/cells/${this.cellGuid}/heartbeat`, { protocol: PROTOCOL_VERSION, ...beat }, "heartbeat", { signal, timeoutMs });
    return heartbeatAnswerSchema.safeParse(answer ?? {}).data?.list_instances === true;
  }

  async reportInstances(instances: InstanceReport[], signal?: AbortSignal): Promise<void> {
    await this.call("POST", `/v3/cells/${this.cellGuid}/instances`, { protocol: PROTOCOL_VERSION, instances }, "instance report", { signal });
  }

  async stagingResult(result: StagingOutcome, signal?: AbortSignal): Promise<void> {
    await this.call("POST", `/v3/cells/${this.cellGuid}/staging_results`, { protocol: PROTOCOL_VERSION, ...result }, "staging result", { signal });
  }
}
