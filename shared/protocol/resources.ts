/** @module Resource amounts a cell offers or an instance asks for (Diego's cell capacity). */
import { z } from "zod";

export const resourcesSchema = z.strictObject({
  memory_mb: z.number().int().min(0),
  disk_mb: z.number().int().min(0),
  /** Container slots (Diego's `max_containers`, default 250). */
  containers: z.number().int().min(0),
});

export type Resources = z.infer<typeof resourcesSchema>;
