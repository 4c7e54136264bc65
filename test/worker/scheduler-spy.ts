/**
 * Calls the Worker with the real Scheduler namespace wrapped so that every
 * wake-up reason is recorded before being forwarded (a spy, not a stand-in:
 * the Durable Object still receives each request).
 */
import { env } from "cloudflare:workers";
import { app } from "../../worker/index";

function recordingScheduler(reasons: string[]): DurableObjectNamespace {
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

/** A JSON request as `token`; returns the status, parsed body and the scheduler wake-ups it caused. */
export async function requestRecordingWakes(method: string, path: string, token: string, body: unknown) {
  const reasons: string[] = [];
  const res = await app.request(path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  }, { ...env, SCHEDULER: recordingScheduler(reasons) });
  return { status: res.status, json: (await res.json()) as any, reasons };
}
