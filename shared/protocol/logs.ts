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

/**
 * Where a line comes from, as Loggregator's source_type: the app's own output
 * (APP, shown as APP/PROC/WEB), the cell about an instance (CELL), the router's
 * access line (RTR), the API about the app (API) and staging (STG). Each writer
 * may write only its own: a cell APP and CELL, a router RTR, the Worker API and STG.
 */
export const LOG_SOURCES = ["APP", "CELL", "RTR", "API", "STG"] as const;
export type LogSource = (typeof LOG_SOURCES)[number];

/** What a cell may ship on its socket. */
export const CELL_LOG_SOURCES = ["APP", "CELL"] as const satisfies readonly LogSource[];

export const logLineSchema = z.strictObject({
  /** ms since the epoch, when the cell read the line. */
  timestamp: z.number().int().min(0),
  instance_index: z.number().int().min(0),
  instance_guid: z.string().min(1),
  stream: z.enum(["stdout", "stderr"]),
  line: z.string(),
  /** Set when the cell or the control plane cut the line to MAX_LOG_LINE_BYTES. */
  truncated: z.boolean().optional(),
  /** Absent means APP; a cell's socket refuses anything but APP and CELL. */
  source: z.enum(CELL_LOG_SOURCES).optional(),
});

/** Loggregator's source_type tag of a line (app lines are the web process's: Berth ships no other type's output yet). */
export const sourceTypeTag = (source: LogSource | undefined): string => (source === undefined || source === "APP" ? "APP/PROC/WEB" : source);

/** A line as the app's log store keeps and serves it: any source. */
export type StoredLogLine = Omit<LogLine, "source"> & { source?: LogSource };

export const logBatchSchema = z.strictObject({
  protocol: protocolField,
  lines: z.array(logLineSchema).max(MAX_LOG_BATCH_LINES),
});

export type LogLine = z.infer<typeof logLineSchema>;
export type LogBatch = z.infer<typeof logBatchSchema>;
