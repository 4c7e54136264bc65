/**
 * @module How writers tell the scheduler that desired state changed: a typed
 * RPC that records the scope and sets the scheduler's alarm to now. It returns
 * before any pass runs. One scheduler Durable Object ("global") runs every pass.
 */
import type { Bindings } from "../env";
import type { WakeScope } from "../scheduling/wake-scope";

export const schedulerOf = (env: Pick<Bindings, "SCHEDULER">) => env.SCHEDULER.get(env.SCHEDULER.idFromName("global"));

/** Tells the scheduler the control plane stalled over [from, to) (a heartbeat committed that late). */
export async function reportStall(env: Pick<Bindings, "SCHEDULER">, from: number, to: number): Promise<void> {
  await schedulerOf(env).noteStall(from, to);
}

export async function wakeScheduler(env: Pick<Bindings, "SCHEDULER">, reason: string, scope: WakeScope): Promise<void> {
  await schedulerOf(env).wake(reason, scope);
}
