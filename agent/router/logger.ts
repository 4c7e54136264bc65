/**
 * @module The daemon's pino logger. Access lines are buffered and written in
 * chunks: one write per request costs a syscall each. Where several workers
 * share stdout, a chunk stays below PIPE_BUF (4096 bytes), which a pipe
 * writes atomically, so their lines never interleave mid-line; a process
 * alone on stdout (role "single") writes bigger chunks, fewer writes.
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

export function createDaemonLogger(role: "primary" | "worker" | "single"): DaemonLogger {
  const destination = pino.destination({ dest: 1, sync: false, minLength: role === "single" ? SINGLE_BUFFER_BYTES : SHARED_BUFFER_BYTES });
  const log = pino({ base: { pid: process.pid, component: "router", role } }, destination);
  setInterval(() => destination.flush(), FLUSH_EVERY_MS).unref();
  return { log, flush: () => destination.flushSync() };
}
