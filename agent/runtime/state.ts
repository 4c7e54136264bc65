/**
 * @module The per-container state file (nomad's TaskHandle): enough for a
 * restarted agent to re-adopt a container — pid plus start time (pid reuse
 * safe), its cgroups and directories. Versioned; parsed with zod when read.
 */
import { z } from "zod";

export const STATE_VERSION = 1;

export const containerStateSchema = z.strictObject({
  version: z.literal(STATE_VERSION),
  id: z.string(),
  pid: z.number().int().positive(),
  startTime: z.number().int().nonnegative(),
  slot: z.number().int().nonnegative(),
  cgroupPaths: z.array(z.string()),
  oomCounterFile: z.string().nullable(),
  usageFiles: z.strictObject({ memory: z.string().nullable(), cpuStat: z.string().nullable() }),
  createdAt: z.number().int(),
});

export type ContainerState = z.infer<typeof containerStateSchema>;

/** What berth-init writes to exit.json when the app ends. */
export const initExitSchema = z.union([
  z.strictObject({ status: z.number().int() }),
  z.strictObject({ signal: z.number().int() }),
]);
