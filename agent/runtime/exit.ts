/**
 * @module How a container ended, in the protocol's shape, from what berth-init
 * recorded (the app's status), what waiting on the init itself showed, and the
 * cgroup's OOM-kill counter. Pure.
 */
import { constants } from "node:os";
import type { z } from "zod";
import type { NativeExit } from "../native/container";
import type { Exit } from "../../shared/protocol/instance";
import type { initExitSchema } from "./state";

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

export function signalName(n: number): string {
  return SIGNAL_NAMES.get(n) ?? `SIG${n}`;
}

export function containerExit(recorded: z.infer<typeof initExitSchema> | null, init: NativeExit | null, oomKills: number): Exit {
  const oom = oomKills > 0;
  if (recorded && "status" in recorded) return { status: recorded.status, signal: null, oom };
  if (recorded) return { status: null, signal: signalName(recorded.signal), oom };
  // No record: the init itself was killed (destroy, or the OOM killer chose it).
  if (init?.status != null) return { status: init.status, signal: null, oom };
  return { status: null, signal: init?.signal != null ? signalName(init.signal) : "SIGKILL", oom };
}
