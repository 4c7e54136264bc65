/**
 * @module A leash for the daemons the local stack and the tests start (wrangler
 * dev, the registry, agents, routers): a few lines of sh that run the daemon in
 * a session of its own and tie its life to this process. When our end of the
 * leash's stdin closes — stop(), or this process ending in any way, SIGKILL
 * included — the daemon gets SIGTERM, and what is left of its process group
 * SIGKILL once the grace period is over. When the daemon exits by itself, what
 * it left in its group is killed at once. Terminal signals (Ctrl-C, a closed
 * terminal) reach neither the leash nor the daemon: the owner decides. The
 * daemon's own sessions (containers, which the agent leaves running) are not
 * in its group and are never touched.
 */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";

// $1: grace in tenths of a second; the rest: the daemon's argv. fd 3 reports
// the daemon's pid. The watcher reads the leash's stdin (kept as fd 4, since a
// background job's own stdin is /dev/null).
const LEASH = `
ticks=$1; shift
exec 4<&0
setsid "$@" 3>&- 4<&- </dev/null &
pid=$!
echo "$pid" >&3
exec 3>&-
{
  read _ <&4 || :
  kill -s TERM "$pid" 2>/dev/null
  i=0
  while [ "$i" -lt "$ticks" ] && kill -s 0 "$pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
  kill -s KILL -- "-$pid" 2>/dev/null
} &
watcher=$!
exec 4<&-
wait "$pid"; status=$?
kill -s KILL -- "-$pid" 2>/dev/null
kill "$watcher" 2>/dev/null
exit "$status"
`;

export interface LeashOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** The daemon's stdout and stderr: "pipe" (read from `process`), "ignore", or an open fd. */
  stdout?: "pipe" | "ignore" | number;
  stderr?: "pipe" | "ignore" | number;
  /** SIGTERM → SIGKILL grace when the leash is let go (default 5 s). */
  graceMs?: number;
}

export interface Leashed {
  /** The leash (sh); its stdout/stderr are the daemon's when piped, its exit code the daemon's. */
  process: ChildProcess;
  /** The daemon's own pid (its process group and session id too). */
  pid: Promise<number>;
  /** Resolves when the leash has exited: the daemon and its process group are gone. */
  exited: Promise<void>;
  /** Sends a signal to the daemon itself (no-op once it has gone). */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** Lets go of the leash: SIGTERM, then SIGKILL after the grace period; resolves once all is gone. */
  stop(): Promise<void>;
}

export function leash(argv: string[], opts: LeashOptions = {}): Leashed {
  const ticks = Math.ceil((opts.graceMs ?? 5000) / 100);
  const stdio: StdioOptions = ["pipe", opts.stdout ?? "pipe", opts.stderr ?? "pipe", "pipe"];
  // detached: the leash leads a session of its own, away from the terminal's signals.
  const child = spawn("sh", ["-c", LEASH, "leash", String(ticks), ...argv], { cwd: opts.cwd, env: opts.env, stdio, detached: true });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const pid = new Promise<number>((resolve, reject) => {
    let text = "";
    const report = child.stdio[3]!;
    report.on("data", (d: Buffer) => (text += d));
    report.once("end", () => (/^\d+\n$/.test(text) ? resolve(Number(text)) : reject(new Error(`leash of ${argv[0]} reported no pid`))));
  });
  pid.catch(() => undefined);
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    process: child,
    pid,
    exited,
    async signal(signal) {
      const p = await pid;
      if (!gone()) {
        try {
          process.kill(p, signal);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
        }
      }
    },
    async stop() {
      if (!gone()) child.stdin!.end();
      await exited;
    },
  };
}
