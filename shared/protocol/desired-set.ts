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
 * - `specs=new`: an instance the cell has taken (reported STARTING or
 *   RUNNING) comes as a reference, without its spec: the cell has it, and an
 *   instance's spec never changes once taken (a new placement is CLAIMED
 *   again, with its spec). A cell that meets a reference it does not run (its
 *   state was lost) asks again with `specs=all`, the default. A set read after
 *   every pass touching the cell otherwise carried every spec each time.
 */
import { z } from "zod";
import { protocolField } from "./version";
import { instanceSpecSchema } from "./instance";
import { registryAccessSchema } from "./registry-access";
import { stagingTaskSchema } from "./staging";

/** An instance the cell has taken, without its spec (`specs=new`). */
export const instanceRefSchema = z.strictObject({
  instance_guid: z.string().min(1),
  process_guid: z.string().min(1),
  index: z.number().int().min(0),
  taken: z.literal(true),
});

/** Told apart by `taken`, so a bad spec's errors name its own fields. */
export const desiredInstanceSchema = z.discriminatedUnion("taken", [instanceSpecSchema.extend({ taken: z.literal(false).optional() }), instanceRefSchema]);

export const desiredSetSchema = z.strictObject({
  protocol: protocolField,
  version: z.number().int().min(0),
  instances: z.array(desiredInstanceSchema),
  staging_tasks: z.array(stagingTaskSchema),
  registry_access: registryAccessSchema,
});

export const SPEC_MODES = ["all", "new"] as const;

export const desiredQuerySchema = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
  specs: z.enum(SPEC_MODES).optional(),
});

export type SpecMode = (typeof SPEC_MODES)[number];
export type InstanceRef = z.infer<typeof instanceRefSchema>;
export type DesiredInstance = z.infer<typeof desiredInstanceSchema>;
export const isInstanceRef = (i: DesiredInstance): i is InstanceRef => "taken" in i;
export type DesiredSet = z.infer<typeof desiredSetSchema>;
export type DesiredQuery = z.infer<typeof desiredQuerySchema>;
