/**
 * @module CF's app log rate limit as a pure function: at most `linesPerSecond`
 * lines per app per one-second window; lines over it are dropped and counted,
 * lines over MAX_LOG_LINE_BYTES are cut and marked. The clock is a parameter.
 */
import { MAX_LOG_LINE_BYTES } from "../protocol/logs";

export interface RateWindow {
  /** Start of the current one-second window (ms). */
  start: number;
  admitted: number;
}

export interface Admission<L> {
  window: RateWindow;
  admitted: L[];
  dropped: number;
  truncated: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Cuts a line to `maxBytes` of UTF-8 without splitting a character. */
export function cutLine(line: string, maxBytes = MAX_LOG_LINE_BYTES): string | null {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: most lines are known to fit without encoding them.
  if (line.length * 3 <= maxBytes) return null;
  const bytes = encoder.encode(line);
  if (bytes.byteLength <= maxBytes) return null;
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return decoder.decode(bytes.subarray(0, end));
}

export function admit<L extends { line: string }>(window: RateWindow, lines: readonly L[], now: number, linesPerSecond: number): Admission<L> {
  const w = now - window.start >= 1000 || now < window.start ? { start: now - (now % 1000), admitted: 0 } : { ...window };
  const admitted: L[] = [];
  let dropped = 0;
  let truncated = 0;
  for (const l of lines) {
    if (w.admitted >= linesPerSecond) {
      dropped++;
      continue;
    }
    w.admitted++;
    const cut = cutLine(l.line);
    if (cut !== null) {
      truncated++;
      admitted.push({ ...l, line: cut, truncated: true });
    } else admitted.push(l);
  }
  return { window: w, admitted, dropped, truncated };
}
