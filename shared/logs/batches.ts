/**
 * @module Packing log lines into batches a cell sends (pure): each line cut to
 * MAX_LOG_LINE_BYTES first, then lines in order into batches of at most
 * MAX_LOG_BATCH_LINES lines and MAX_LOG_BATCH_BYTES bytes of JSON, so an app
 * printing huge or escape-heavy lines cannot make a batch the control plane
 * must refuse.
 *
 * @example
 * for (const batch of packLogBatches(read)) await socket.send(batch.message);
 */
import { MAX_LOG_BATCH_BYTES, MAX_LOG_BATCH_LINES } from "../protocol/logs";
import { PROTOCOL_VERSION } from "../protocol/version";
import { cutLine } from "./rate-limit";

const encoder = new TextEncoder();
/** Reused by utf8Bytes: encoding into it allocates nothing (a router packs a line per request). */
const scratch = new Uint8Array(64 * 1024);
function utf8Bytes(s: string): number {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: most strings fit the scratch buffer.
  return s.length * 3 <= scratch.byteLength ? encoder.encodeInto(s, scratch).written : encoder.encode(s).byteLength;
}

/** A batch's message as sent: what the byte cap is measured on. */
export const logBatchMessage = (lines: readonly { line: string }[]) => JSON.stringify({ protocol: PROTOCOL_VERSION, lines });

/** The message around its lines: each line is serialized once, while packing, and the message joined from those. */
const EMPTY_MESSAGE = logBatchMessage([]);
const HEAD = EMPTY_MESSAGE.slice(0, EMPTY_MESSAGE.indexOf("[]") + 1);
const TAIL = EMPTY_MESSAGE.slice(EMPTY_MESSAGE.indexOf("[]") + 1);

/** Lines in order and their message (logBatchMessage of them), ready to send. */
export interface LogBatch<L> {
  readonly lines: L[];
  readonly message: string;
}

/**
 * Cells' app lines and routers' access lines are packed alike: `{ protocol, lines }`. Lazily: each batch is
 * made when asked for, so a caller taking only the first (a router's shipper, whose queue outgrows a batch)
 * serializes no line beyond it.
 */
export function* packLogBatches<L extends { line: string; truncated?: boolean }>(
  lines: readonly L[],
  limits = { maxBytes: MAX_LOG_BATCH_BYTES, maxLines: MAX_LOG_BATCH_LINES },
): Generator<LogBatch<L>, void, undefined> {
  const overhead = utf8Bytes(EMPTY_MESSAGE);
  let current: L[] = [];
  let texts: string[] = [];
  let bytes = overhead;
  const batch = (): LogBatch<L> => ({ lines: current, message: `${HEAD}${texts.join(",")}${TAIL}` });
  for (const l of lines) {
    const cut = cutLine(l.line);
    const line = cut === null ? l : { ...l, line: cut, truncated: true };
    const text = JSON.stringify(line);
    const size = utf8Bytes(text);
    // A comma joins a line to the one before it.
    if (current.length > 0 && (bytes + 1 + size > limits.maxBytes || current.length >= limits.maxLines)) {
      yield batch();
      current = [];
      texts = [];
      bytes = overhead;
    }
    bytes += (current.length > 0 ? 1 : 0) + size;
    current.push(line);
    texts.push(text);
  }
  if (current.length > 0) yield batch();
}
