/**
 * Calls the Worker with its Scheduler namespace replaced: `recordingScheduler`
 * wraps the real one so every wake's reason is recorded before being forwarded
 * (a spy: the Durable Object still receives each wake); `unreachableScheduler`
 * stands in for a Durable Object that cannot be reached, which a test cannot
 * cause with the real one. Wakes run after the response (`waitUntil`): the
 * request waits for them through its execution context before answering here.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { app } from "../../worker/index";
import type { WakeScope } from "../../worker/scheduling/wake-scope";

type SchedulerNamespace = typeof env.SCHEDULER;

function withStub(wake: (real: ReturnType<SchedulerNamespace["get"]>, reason: string, scope: WakeScope) => Promise<void>): SchedulerNamespace {
  const real = env.SCHEDULER;
  return new Proxy(real, {
    get(target, prop) {
      if (prop !== "get") return Reflect.get(target, prop).bind(target);
      return (id: DurableObjectId) => {
        const stub = target.get(id);
        return { wake: (reason: string, scope: WakeScope) => wake(stub, reason, scope) };
      };
    },
  });
}

export function recordingScheduler(reasons: string[]): SchedulerNamespace {
  return withStub(async (stub, reason, scope) => {
    reasons.push(reason);
    await stub.wake(reason, scope);
  });
}

export function unreachableScheduler(): SchedulerNamespace {
  return withStub(() => Promise.reject(new Error("Durable Object unreachable")));
}

/** A JSON request as `token` with the given Scheduler namespace, its after-response work done. */
export async function requestWithScheduler(scheduler: SchedulerNamespace, method: string, path: string, token: string, body: unknown) {
  const ctx = createExecutionContext();
  const res = await app.request(path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  }, { ...env, SCHEDULER: scheduler }, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, json: (await res.json()) as any };
}

/** A JSON request as `token`; returns the status, parsed body and the scheduler wake-ups it caused. */
export async function requestRecordingWakes(method: string, path: string, token: string, body: unknown) {
  const reasons: string[] = [];
  return { ...(await requestWithScheduler(recordingScheduler(reasons), method, path, token, body)), reasons };
}
