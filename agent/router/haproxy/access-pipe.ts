/**
 * @module HAProxy's access lines from a pipe (its `log stdout`), drained on a
 * timer rather than as each line arrives.
 *
 * A reader woken for every line costs HAProxy a wakeup and a context switch
 * per request: under wrk's load on Berth's config, streaming its ring over
 * the runtime socket cost it 3–9 µs a request, a pipe drained every 20 ms
 * about nothing. HAProxy never blocks on its log (it makes the descriptor
 * non-blocking and drops what does not fit, counting it in `show info`'s
 * DroppedLogs), so the pipe is made to hold many intervals of lines.
 */
import { closeSync, readFileSync, readSync } from "node:fs";

export interface AccessPipe {
  /** Resolves once HAProxy's end is closed (it exited) and every line written before was handed on. */
  readonly ended: Promise<void>;
  /** Reads what is there now, without waiting for the timer (HAProxy has exited: read to the end). */
  drain(): void;
}

/**
 * The pipe size to ask for: `wanted`, or the most this host lets an
 * unprivileged process have (/proc/sys/fs/pipe-max-size, 1 MiB unless lowered)
 * when that is less, so a host that lowered it still runs the router.
 */
export function accessPipeBytes(wanted: number, maxFile = "/proc/sys/fs/pipe-max-size"): number {
  let max: number;
  try {
    max = Number(readFileSync(maxFile, "utf8").trim());
  } catch {
    return wanted;
  }
  return Number.isInteger(max) && max > 0 ? Math.min(wanted, max) : wanted;
}

function wouldBlock(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === "EAGAIN";
}

/**
 * Reads the non-blocking `fd` every `everyMs` until its writer closes it,
 * handing on what it holds up to its last newline (a line split between two
 * reads waits, as bytes, for its end: no character is cut in two). `fd` is
 * closed at the end. `capacity` is the pipe's: one read takes all of it.
 */
export function drainAccessPipe(fd: number, capacity: number, everyMs: number, onLines: (text: string) => void): AccessPipe {
  const buffer = Buffer.allocUnsafe(capacity);
  let held = 0;
  let finish: () => void;
  const ended = new Promise<void>((resolve) => (finish = resolve));
  let closed = false;
  const drain = (): void => {
    while (!closed) {
      let read: number;
      try {
        read = readSync(fd, buffer, held, buffer.length - held, null);
      } catch (err) {
        if (wouldBlock(err)) return;
        throw err;
      }
      if (read === 0) {
        closed = true;
        clearInterval(timer);
        closeSync(fd);
        if (held > 0) onLines(`${buffer.toString("utf8", 0, held)}\n`); // a last line without its newline
        return finish();
      }
      const filled = held + read;
      const end = buffer.lastIndexOf(0x0a, filled - 1) + 1;
      // A line longer than the whole buffer cannot be one of HAProxy's (its log lines are bounded): handed on, newline-less, as it is.
      const cut = end === 0 && filled === buffer.length ? filled : end;
      if (cut > 0) onLines(buffer.toString("utf8", 0, cut));
      buffer.copyWithin(0, cut, filled);
      held = filled - cut;
    }
  };
  const timer = setInterval(drain, everyMs);
  return { ended, drain };
}
