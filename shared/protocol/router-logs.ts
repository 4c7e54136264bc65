/**
 * @module Access lines routers ship into apps' logs (CF's RTR lines):
 * `POST /v3/routers/logs` with the router's credential, a batch of lines for
 * any apps, each naming the app and instance the router sent the request to.
 * The control plane keeps a line only for an app it routes to (the app has a
 * route mapped) and answers how many it kept and refused; the source type is
 * always RTR, whatever the router sends.
 */
import { z } from "zod";
import { MAX_LOG_BATCH_LINES, MAX_LOG_LINE_BYTES } from "./logs";
import { protocolField } from "./version";

/** Largest batch a router sends: under the Worker's request body cap. */
export const MAX_ROUTER_LOG_BATCH_BYTES = 192 * 1024;

export const routerLogLineSchema = z.strictObject({
  app_guid: z.string().min(1).max(255),
  instance_guid: z.string().min(1).max(255),
  /** ms since the epoch: when the request arrived. */
  timestamp: z.number().int().min(0),
  line: z.string().max(MAX_LOG_LINE_BYTES),
  /** Set when the router cut the line to MAX_LOG_LINE_BYTES. */
  truncated: z.boolean().optional(),
});

export const routerLogBatchSchema = z.strictObject({
  protocol: protocolField,
  lines: z.array(routerLogLineSchema).max(MAX_LOG_BATCH_LINES),
});

export const routerLogAnswerSchema = z.strictObject({
  accepted: z.number().int().min(0),
  /** Lines for apps with no route (or none that exist): not kept. */
  refused: z.number().int().min(0),
});

export type RouterLogLine = z.infer<typeof routerLogLineSchema>;
export type RouterLogBatch = z.infer<typeof routerLogBatchSchema>;
export type RouterLogAnswer = z.infer<typeof routerLogAnswerSchema>;
