/**
 * @module The `berth` CLI run in-process for end-to-end tests, with its own
 * BERTH_HOME (so each test file has its own login and target).
 */
import { run, type RunOptions } from "../../cli/main";

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export function berthCli(home: () => string) {
  /** With run options of the caller's (stdin, a request counter, a stop signal, extra env); any exit code. */
  async function berthWith(opts: Omit<RunOptions, "stdout" | "stderr"> & { onOutput?: (s: string) => void }, ...argv: string[]): Promise<CliResult> {
    let out = "";
    let err = "";
    const env = { ...process.env, BERTH_HOME: home(), BERTH_STARTUP_TIMEOUT_MS: "120000", ...opts.env };
    const write = (s: string) => {
      out += s;
      opts.onOutput?.(out);
    };
    const code = await run(argv, { ...opts, env, stdout: write, stderr: (s) => (err += s) });
    return { code, out, err };
  }
  /** Any exit code; the caller looks. */
  const berth = (...argv: string[]) => berthWith({}, ...argv);
  /** Exit 0 or a thrown error naming the command and its stderr; resolves with stdout. */
  async function ok(...argv: string[]): Promise<string> {
    const r = await berth(...argv);
    if (r.code !== 0) throw new Error(`berth ${argv.join(" ")} failed (${r.code}): ${r.err}`);
    return r.out;
  }
  /** Logs in as `token` against `apiUrl`, creates `space` and targets it (the start of every session). */
  async function intoNewSpace(apiUrl: string, token: string, space: string): Promise<void> {
    await ok("api", apiUrl);
    await ok("login", "-t", token);
    await ok("create-space", space);
    await ok("target", "-s", space);
  }
  return { berth, berthWith, ok, intoNewSpace };
}
