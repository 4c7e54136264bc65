/**
 * @module How request handlers tell the scheduler that desired state changed
 * (push, scale, start, stop, restart, flag flip, registry access change).
 * One scheduler Durable Object ("global") runs every convergence pass.
 */
import type { Bindings } from "../env";

export async function wakeScheduler(env: Pick<Bindings, "SCHEDULER">, reason: string): Promise<void> {
  const stub = env.SCHEDULER.get(env.SCHEDULER.idFromName("global"));
  await stub.fetch("https://scheduler/wake", { method: "POST", body: JSON.stringify({ reason }) });
}
