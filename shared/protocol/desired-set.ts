/**
 * @module A cell's desired set: `GET /v3/cells/:id/desired?after=VERSION`.
 *
 * - 200 with the whole set when its `version` differs from `after` (or `after`
 *   is absent); the cell applies the difference to what it runs.
 * - Otherwise the request is held (at most the server's hold time, 50 s in
 *   production) and answered the moment the set changes.
 * - 204, no body, when the hold ends with nothing changed. A 204 never means
 *   "run nothing": an empty set is a 200 with `instances: []`.
 * - `version` only grows; the cell sends back the last one it applied.
 */
import { z } from "zod";
import { protocolField } from "./version";
import { instanceSpecSchema } from "./instance";
import { registryAccessSchema } from "./registry-access";
import { stagingTaskSchema } from "./staging";

export const desiredSetSchema = z.strictObject({
  protocol: protocolField,
  version: z.number().int().min(0),
  instances: z.array(instanceSpecSchema),
  staging_tasks: z.array(stagingTaskSchema),
  registry_access: registryAccessSchema,
});

export const desiredQuerySchema = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
});

export type DesiredSet = z.infer<typeof desiredSetSchema>;
export type DesiredQuery = z.infer<typeof desiredQuerySchema>;
