/**
 * @module The `berth` CLI, shaped after the cf CLI. Exit codes: 0 success,
 * 1 a failed operation (with the API's CF-* title and detail), 2 a usage error.
 */
import { Command, CommanderError } from "commander";
import { ApiError, NotLoggedIn } from "./api";
import { makeCtx, UsageError, type Ctx } from "./context";
import { registerAdmin } from "./commands/admin";
import { AllInstancesCrashed, registerApps } from "./commands/apps";
import { registerEnv } from "./commands/env";
import { registerFlags } from "./commands/flags";
import { registerLogs } from "./commands/logs";
import { registerPush } from "./commands/push";
import { registerRoutes } from "./commands/routes";
import { registerSession } from "./commands/session";

export type Action = <A extends unknown[]>(fn: (ctx: Ctx, ...args: A) => Promise<void>) => (...args: unknown[]) => Promise<void>;

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  stdout?: (s: string) => void;
  stderr?: (s: string) => void;
}

export function buildProgram(opts: RunOptions = {}): Command {
  const program = new Command("berth")
    .description("Berth: run Docker-image apps on your own hosts")
    .option("--json", "print machine-readable JSON")
    .exitOverride()
    .configureOutput({
      writeOut: opts.stdout ?? ((s) => process.stdout.write(s)),
      writeErr: opts.stderr ?? ((s) => process.stderr.write(s)),
    });

  const action: Action = (fn) => async (...args) => {
    const cmd = args.at(-1) as Command;
    const json = Boolean(cmd.optsWithGlobals().json);
    const ctx = await makeCtx({ json, env: opts.env, ...(opts.stdout ? { write: opts.stdout } : {}) });
    // commander passes (...positionals, options, command); commands take (ctx, ...positionals, options).
    await (fn as (ctx: Ctx, ...a: unknown[]) => Promise<void>)(ctx, ...args.slice(0, -1));
  };

  registerSession(program, action);
  registerPush(program, action);
  registerApps(program, action);
  registerEnv(program, action);
  registerRoutes(program, action);
  registerFlags(program, action);
  registerLogs(program, action);
  registerAdmin(program, action);
  return program;
}

/** Runs the CLI and returns its exit code (never calls process.exit itself). */
export async function run(argv: string[], opts: RunOptions = {}): Promise<number> {
  const stderr = opts.stderr ?? ((s: string) => process.stderr.write(s));
  const program = buildProgram(opts);
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof ApiError) {
      stderr(`FAILED\n${e.title}: ${e.detail}\n`);
      return 1;
    }
    if (e instanceof UsageError || e instanceof NotLoggedIn || e instanceof AllInstancesCrashed) {
      stderr(`FAILED\n${e.message}\n`);
      return 1;
    }
    stderr(`FAILED\n${(e as Error).message}\n`);
    return 1;
  }
}
