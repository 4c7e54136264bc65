/**
 * @module The daemon's pino logger. Access lines are buffered and written in
 * chunks below PIPE_BUF (4096 bytes): one write per request costs a syscall
 * each, while a chunk this size is still written atomically to a pipe, so the
 * lines of several workers sharing stdout never interleave mid-line.
 */
import pino, { type Logger } from "pino";

const BUFFER_BYTES = 3072;
const FLUSH_EVERY_MS = 500;

export interface DaemonLogger {
  readonly log: Logger;
  /** Writes what is buffered, synchronously (before exit, after a line others wait for). */
  flush(): void;
}

export function createDaemonLogger(role: "primary" | "worker" | "single"): DaemonLogger {
  const destination = pino.destination({ dest: 1, sync: false, minLength: BUFFER_BYTES });
  const log = pino({ base: { pid: process.pid, component: "router", role } }, destination);
  setInterval(() => destination.flush(), FLUSH_EVERY_MS).unref();
  return { log, flush: () => destination.flushSync() };
}
