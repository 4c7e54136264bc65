/**
 * @module The `berth` CLI run in-process for end-to-end tests, with its own
 * BERTH_HOME (so each test file has its own login and target).
 */
import { run } from "../../cli/main";

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export function berthCli(home: () => string) {
  /** Any exit code; the caller looks. */
  async function berth(...argv: string[]): Promise<CliResult> {
    let out = "";
    let err = "";
    const env = { ...process.env, BERTH_HOME: home(), BERTH_STARTUP_TIMEOUT_MS: "120000" };
    const code = await run(argv, { env, stdout: (s) => (out += s), stderr: (s) => (err += s) });
    return { code, out, err };
  }
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
  return { berth, ok, intoNewSpace };
}
