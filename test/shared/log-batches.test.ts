/** Packing log lines into batches (shared/logs/batches.ts): no I/O. */
import { describe, expect, it } from "vitest";
import { logBatchMessage, packLogBatches } from "../../shared/logs/batches";
import { MAX_LOG_BATCH_BYTES, MAX_LOG_LINE_BYTES, type LogLine } from "../../shared/protocol/logs";

const line = (text: string, n = 0): LogLine => ({ timestamp: 1_700_000_000_000 + n, instance_index: 0, instance_guid: "g", stream: "stdout", line: text });
const bytes = (s: string) => new TextEncoder().encode(s).byteLength;

describe("packLogBatches", () => {
  it("keeps order and splits at the line count", () => {
    const lines = Array.from({ length: 2500 }, (_, i) => line(`l${i}`, i));
    const batches = packLogBatches(lines);
    expect(batches.map((b) => b.length)).toEqual([1000, 1000, 500]);
    expect(batches.flat().map((l) => l.line)).toEqual(lines.map((l) => l.line));
  });

  it("splits at the byte cap, measured on the message as sent, each batch as full as it can be", () => {
    const lines = Array.from({ length: 7 }, (_, i) => line("y".repeat(100), i));
    const one = bytes(logBatchMessage([lines[0]!]));
    const batches = packLogBatches(lines, { maxBytes: bytes(logBatchMessage(lines.slice(0, 3))), maxLines: 1000 });
    expect(batches.map((b) => b.length)).toEqual([3, 3, 1]);
    expect(bytes(logBatchMessage(batches[2]!))).toBe(one);
  });

  it("cuts long lines first, so escape-heavy output still fits under the cap", () => {
    // Control characters: six bytes of JSON each.
    const lines = Array.from({ length: 300 }, (_, i) => line("\u0001".repeat(50_000), i));
    const batches = packLogBatches(lines);
    for (const b of batches) expect(bytes(logBatchMessage(b))).toBeLessThanOrEqual(MAX_LOG_BATCH_BYTES);
    expect(batches.flat()).toHaveLength(300);
    expect(batches.flat().every((l) => l.truncated && bytes(l.line) === MAX_LOG_LINE_BYTES)).toBe(true);
  });
});
