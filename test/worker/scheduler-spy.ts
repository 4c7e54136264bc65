/**
 * Calls the Worker with its Scheduler namespace replaced: `recordingScheduler`
 * wraps the real one so every wake-up reason is recorded before being forwarded
 * (a spy: the Durable Object still receives each request); `unreachableScheduler`
 * stands in for a Durable Object that cannot be reached, which a test cannot
 * cause with the real one.
 */
import { env } from "cloudflare:workers";
import { app } from "../../worker/index";

export function recordingScheduler(reasons: string[]): DurableObjectNamespace {
  const real = env.SCHEDULER;
  return new Proxy(real, {
    get(target, prop) {
      if (prop !== "get") return Reflect.get(target, prop).bind(target);
      return (id: DurableObjectId) => {
        const stub = target.get(id);
        return {
          fetch: async (input: RequestInfo, init?: RequestInit) => {
            reasons.push((JSON.parse(String(init?.body)) as { reason: string }).reason);
            return stub.fetch(input, init);
          },
        };
      };
    },
  });
}

export function unreachableScheduler(): DurableObjectNamespace {
  const real = env.SCHEDULER;
  return new Proxy(real, {
    get(target, prop) {
      if (prop !== "get") return Reflect.get(target, prop).bind(target);
      return () => ({ fetch: async () => Promise.reject(new Error("Durable Object unreachable")) });
    },
  });
}

/** A JSON request as `token` with the given Scheduler namespace. */
export async function requestWithScheduler(scheduler: DurableObjectNamespace, method: string, path: string, token: string, body: unknown) {
  const res = await app.request(path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  }, { ...env, SCHEDULER: scheduler });
  return { status: res.status, json: (await res.json()) as any };
}

/** A JSON request as `token`; returns the status, parsed body and the scheduler wake-ups it caused. */
export async function requestRecordingWakes(method: string, path: string, token: string, body: unknown) {
  const reasons: string[] = [];
  return { ...(await requestWithScheduler(recordingScheduler(reasons), method, path, token, body)), reasons };
}
