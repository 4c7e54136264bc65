/**
 * @module The cell's side of the agent protocol over HTTP (DESIGN § Agent
 * protocol). Every call is idempotent; callers retry with backoff.
 */
import { fetch } from "undici";
import { desiredSetSchema, type DesiredSet } from "../../shared/protocol/desired-set";
import {
  registrationResponseSchema,
  type CellRegistration,
  type RegistrationResponse,
} from "../../shared/protocol/enrollment";
import type { Heartbeat } from "../../shared/protocol/heartbeat";
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

async function check(res: Awaited<ReturnType<typeof fetch>>, what: string): Promise<unknown> {
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

export async function register(apiUrl: string, registration: Omit<CellRegistration, "protocol">): Promise<RegistrationResponse> {
  const res = await fetch(new URL("/v3/cells/register", apiUrl), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ protocol: PROTOCOL_VERSION, ...registration }),
  });
  return registrationResponseSchema.parse(await check(res, "register"));
}

export class ControlPlaneClient {
  constructor(
    readonly apiUrl: string,
    readonly cellGuid: string,
    private readonly credential: string,
  ) {}

  private async call(method: string, path: string, body: unknown, what: string, signal?: AbortSignal) {
    const res = await fetch(new URL(path, this.apiUrl), {
      method,
      signal,
      headers: { authorization: `Bearer ${this.credential}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { res, what };
  }

  /** The desired set when it differs from `after`; null when the hold ended unchanged (204). */
  async desired(after: number | null, signal?: AbortSignal): Promise<DesiredSet | null> {
    const q = after === null ? "" : `?after=${after}`;
    const { res } = await this.call("GET", `/v3/cells/${this.cellGuid}/desired${q}`, undefined, "desired", signal);
    if (res.status === 204) {
      await res.body?.cancel();
      return null;
    }
    return desiredSetSchema.parse(await check(res, "desired"));
  }

  async heartbeat(beat: Omit<Heartbeat, "protocol">, signal?: AbortSignal): Promise<void> {
    const { res } = await this.call("POST", `/v3/cells/${this.cellGuid}/heartbeat`, { protocol: PROTOCOL_VERSION, ...beat }, "heartbeat", signal);
    await check(res, "heartbeat");
  }

  async reportInstances(instances: InstanceReport[], signal?: AbortSignal): Promise<void> {
    const { res } = await this.call("POST", `/v3/cells/${this.cellGuid}/instances`, { protocol: PROTOCOL_VERSION, instances }, "instance report", signal);
    await check(res, "instance report");
  }

  async stagingResult(result: StagingOutcome, signal?: AbortSignal): Promise<void> {
    const { res } = await this.call("POST", `/v3/cells/${this.cellGuid}/staging_results`, { protocol: PROTOCOL_VERSION, ...result }, "staging result", signal);
    await check(res, "staging result");
  }
}
