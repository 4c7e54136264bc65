/**
 * @module Staging tasks run on a cell (docs/architecture.md § Where staging runs): when the
 * registry needs a configured CA, unverified TLS, or is reachable from cells
 * only. The task travels in the chosen cell's desired set; the cell resolves
 * the image metadata and posts the result once.
 */
import { z } from "zod";
import { protocolField } from "./version";
import { credentialsSchema, resolvedImageSchema } from "./image";

export const stagingTaskSchema = z.strictObject({
  build_guid: z.string().min(1),
  /** The image as the package names it. */
  image: z.string().min(1),
  credentials: credentialsSchema.optional(),
  registry_access_version: z.number().int().min(0),
});

export const stagingResultSchema = z.discriminatedUnion("state", [
  z.strictObject({
    protocol: protocolField,
    build_guid: z.string().min(1),
    state: z.literal("STAGED"),
    image: resolvedImageSchema,
  }),
  z.strictObject({
    protocol: protocolField,
    build_guid: z.string().min(1),
    state: z.literal("FAILED"),
    /** The staging error as CF words it, e.g. "Start command not specified". */
    error: z.string().min(1).max(1024),
  }),
]);

/** Largest staging result body (UTF-8 bytes of its JSON): the Worker's body cap (worker/http/validate.ts MAX_BODY_BYTES). */
export const MAX_STAGING_RESULT_BYTES = 256 * 1024;

export type StagingTask = z.infer<typeof stagingTaskSchema>;
export type StagingResult = z.infer<typeof stagingResultSchema>;
