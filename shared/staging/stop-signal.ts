/**
 * @module An image's STOPSIGNAL (OCI config `StopSignal`) as the name the
 * cell sends: Docker accepts `SIGQUIT`, `QUIT` or a number; anything else
 * refuses the image, as `docker create` does ("invalid signal").
 */

/** Linux's standard signals by number (x86, arm); real-time signals are not stop signals any image uses. */
export const SIGNALS = [
  "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV",
  "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN",
  "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
] as const;

export type StopSignal = (typeof SIGNALS)[number];

/** CF's and Docker's stop signal when the image names none. */
export const DEFAULT_STOP_SIGNAL: StopSignal = "SIGTERM";

/** `SIGQUIT`, `quit` or `3` → "SIGQUIT"; null when it names no signal. */
export function parseStopSignal(value: string): StopSignal | null {
  const v = value.trim().toUpperCase();
  if (/^\d{1,2}$/.test(v)) return SIGNALS[Number(v) - 1] ?? null;
  const name = v.startsWith("SIG") ? v : `SIG${v}`;
  return SIGNALS.find((s) => s === name) ?? null;
}
