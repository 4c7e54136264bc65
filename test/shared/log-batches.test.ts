/** Packing log lines into batches (shared/logs/batches.ts): no I/O. */
import { describe, expect, it } from "vitest";
import { logBatchMessage, packLogBatches } from "../../shared/logs/batches";
import { MAX_LOG_BATCH_BYTES, MAX_LOG_LINE_BYTES, type LogLine } from "../../shared/protocol/logs";

const line = (text: string, n = 0): LogLine => ({ timestamp: 1_700_000_000_000 + n, instance_index: 0, instance_guid: "g", stream: "stdout", line: text });
const bytes = (s: string) => new TextEncoder().encode(s).byteLength;

describe("packLogBatches", () => {
  it("keeps order and splits at the line count", () => {
    const lines = Array.from({ length: 2500 }, (_, i) => line(`l${i}`, i));
    const batches = [...packLogBatches(lines)];
    expect(batches.map((b) => b.lines.length)).toEqual([1000, 1000, 500]);
    expect(batches.flatMap((b) => b.lines).map((l) => l.line)).toEqual(lines.map((l) => l.line));
  });

  it("packs lazily: taking the first batch serializes no line beyond the one that closed it", () => {
    const read = new Set<number>();
    const lines = Array.from({ length: 10 }, (_, i) => {
      const l = line("", i);
      Object.defineProperty(l, "line", { enumerable: true, get: () => (read.add(i), `l${i}`) });
      return l;
    });
    const [first] = packLogBatches(lines, { maxBytes: MAX_LOG_BATCH_BYTES, maxLines: 3 });
    expect(first!.lines.map((l) => l.line)).toEqual(["l0", "l1", "l2"]);
    expect([...read].sort()).toEqual([0, 1, 2, 3]);
  });

  it("splits at the byte cap, measured on the message as sent, each batch as full as it can be", () => {
    const lines = Array.from({ length: 7 }, (_, i) => line("y".repeat(100), i));
    const one = bytes(logBatchMessage([lines[0]!]));
    const batches = [...packLogBatches(lines, { maxBytes: bytes(logBatchMessage(lines.slice(0, 3))), maxLines: 1000 })];
    expect(batches.map((b) => b.lines.length)).toEqual([3, 3, 1]);
    expect(bytes(batches[2]!.message)).toBe(one);
  });

  it("cuts long lines first, so escape-heavy output still fits under the cap", () => {
    // Control characters: six bytes of JSON each.
    const lines = Array.from({ length: 300 }, (_, i) => line("\u0001".repeat(50_000), i));
    const batches = [...packLogBatches(lines)];
    for (const b of batches) expect(bytes(b.message)).toBeLessThanOrEqual(MAX_LOG_BATCH_BYTES);
    expect(batches.flatMap((b) => b.lines)).toHaveLength(300);
    expect(batches.flatMap((b) => b.lines).every((l) => l.truncated && bytes(l.line) === MAX_LOG_LINE_BYTES)).toBe(true);
  });

  it("gives each batch the message logBatchMessage would make of its lines, cut lines as cut", () => {
    const lines = [line('quote " backslash \\ and \u0007', 0), line("é".repeat(MAX_LOG_LINE_BYTES), 1), line("plain", 2)];
    const batches = [...packLogBatches(lines, { maxBytes: MAX_LOG_BATCH_BYTES, maxLines: 2 })];
    expect(batches).toHaveLength(2);
    for (const b of batches) expect(b.message).toBe(logBatchMessage(b.lines));
    expect(JSON.parse(batches[0]!.message).lines[1].truncated).toBe(true);
  });
});
