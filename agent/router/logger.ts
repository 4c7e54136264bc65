/**
 * @module The daemon's pino logger. Access lines are buffered and written in
 * chunks: one write per request costs a syscall each. Where several workers
 * share stdout, a chunk stays below PIPE_BUF (4096 bytes), which a pipe
 * writes atomically, so their lines never interleave mid-line; a process
 * alone on stdout (role "single") writes bigger chunks, fewer writes.
 *
 * Lines gather here, joined once per chunk, before sonic-boom writes them:
 * sonic-boom's own buffering (`minLength`) measures its whole pending buffer
 * on every line, which cost about 3 µs a request at 12 KiB (bench/router.ts,
 * the HAProxy path's daemon). Each chunk is written synchronously: an
 * asynchronous write costs a hand-off to libuv and back, about 1.5 µs a line
 * more in all (200,000 access lines to a file: 3.4–4.0 against 5.2 µs each).
 */
import pino, { type Logger } from "pino";

const SHARED_BUFFER_BYTES = 3072;
/** Below sonic-boom's largest write (16 KiB), so a chunk goes in one write. */
const SINGLE_BUFFER_BYTES = 12 * 1024;
const FLUSH_EVERY_MS = 500;

export interface DaemonLogger {
  readonly log: Logger;
  /** Writes what is buffered, synchronously (before exit, after a line others wait for). */
  flush(): void;
}

/** pino's lines, held until `chunkBytes` of them are here, then handed to `destination` as one string. */
function chunked(destination: pino.DestinationStream, chunkBytes: number): pino.DestinationStream & { drain(): void } {
  let lines: string[] = [];
  let bytes = 0;
  const drain = () => {
    if (lines.length === 0) return;
    destination.write(lines.join(""));
    lines = [];
    bytes = 0;
  };
  return {
    write(line: string) {
      const size = Buffer.byteLength(line);
      if (bytes + size > chunkBytes) drain();
      lines.push(line);
      bytes += size;
    },
    drain,
  };
}

export function createDaemonLogger(role: "primary" | "worker" | "single"): DaemonLogger {
  const destination = pino.destination({ dest: 1, sync: true });
  const lines = chunked(destination, role === "single" ? SINGLE_BUFFER_BYTES : SHARED_BUFFER_BYTES);
  const log = pino({ base: { pid: process.pid, component: "router", role } }, lines);
  setInterval(() => lines.drain(), FLUSH_EVERY_MS).unref();
  return {
    log,
    flush: () => {
      lines.drain();
      destination.flushSync();
    },
  };
}
