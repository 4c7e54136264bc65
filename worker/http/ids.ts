/** @module Identifiers and timestamps in CC's formats. */
export const newGuid = (): string => crypto.randomUUID();

/** ISO 8601 to the second, as CC renders `created_at`/`updated_at`. */
export const isoNow = (now: Date = new Date()): string => now.toISOString().replace(/\.\d{3}Z$/, "Z");
