/**
 * @module What a cell tells the control plane: a heartbeat every few seconds
 * (`POST /v3/cells/:id/heartbeat`, Diego's presence with a 15 s TTL) and state
 * changes at once (`POST /v3/cells/:id/instances`). Both are level-triggered:
 * sending the same report twice changes nothing.
 */
import { z } from "zod";
import { protocolField } from "./version";
import { resourcesSchema } from "./resources";
import { digestSchema } from "./image";
import { instanceReportSchema } from "./instance";

export const heartbeatSchema = z.strictObject({
  protocol: protocolField,
  capacity: resourcesSchema,
  free: resourcesSchema,
  /** Layer digests the cell holds, for placement to prefer it. */
  cached_layers: z.array(digestSchema),
  /**
   * Every instance the cell runs or just stopped, with its usage: sent when the list differs from what the control
   * plane has taken (the last list and the reports since), when its answer asked for it (`list_instances`), and at
   * least every bulk-sync interval (Diego's rep syncs its containers every 30 s). A beat without it renews presence
   * and resources only: what a steady cell sends most.
   */
  instances: z.array(instanceReportSchema).optional(),
});

/**
 * The control plane's answer to a heartbeat, as a cell reads it. `list_instances`: the next beat should list the
 * instances (the control plane holds some the cell may have stopped, or the cell has just come back from LOST).
 */
export const heartbeatAnswerSchema = z.object({
  list_instances: z.boolean().optional(),
});

export const instanceReportsSchema = z.strictObject({
  protocol: protocolField,
  instances: z.array(instanceReportSchema).min(1),
});

export type Heartbeat = z.infer<typeof heartbeatSchema>;
export type InstanceReports = z.infer<typeof instanceReportsSchema>;
