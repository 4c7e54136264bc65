/**
 * @module App log lines as cells ship them to the control plane: over a
 * WebSocket per app (`GET /v3/cells/:id/apps/:guid/logs`, one JSON batch per
 * message) into that app's log Durable Object, which keeps recent lines and
 * fans them out to tails (`GET /v3/apps/:guid/logs/tail`).
 */
import { z } from "zod";
import { protocolField } from "./version";

/** Longest line kept; longer lines are cut (and counted), as CF's loggregator cuts at 61 KiB. */
export const MAX_LOG_LINE_BYTES = 16 * 1024;

/** Most lines in one batch. */
export const MAX_LOG_BATCH_LINES = 1000;

/**
 * Largest batch message (UTF-8 bytes of its JSON): half the 1 MiB a Worker
 * accepts per WebSocket message (beyond it the platform closes the socket
 * with 1009), so a batch is refused with an answer instead. One cut line,
 * even of control characters JSON writes as six bytes each, fits.
 */
export const MAX_LOG_BATCH_BYTES = 512 * 1024;

export const logLineSchema = z.strictObject({
  /** ms since the epoch, when the cell read the line. */
  timestamp: z.number().int().min(0),
  instance_index: z.number().int().min(0),
  instance_guid: z.string().min(1),
  stream: z.enum(["stdout", "stderr"]),
  line: z.string(),
  /** Set when the cell or the control plane cut the line to MAX_LOG_LINE_BYTES. */
  truncated: z.boolean().optional(),
});

export const logBatchSchema = z.strictObject({
  protocol: protocolField,
  lines: z.array(logLineSchema).max(MAX_LOG_BATCH_LINES),
});

export type LogLine = z.infer<typeof logLineSchema>;
export type LogBatch = z.infer<typeof logBatchSchema>;
