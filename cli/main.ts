/**
 * @module The `berth` CLI, shaped after the cf CLI. Exit codes: 0 success,
 * 1 a failed operation (with the API's CF-* title and detail), 2 a usage error.
 * With --json, errors are JSON too, in the API's own shape
 * (`{"errors":[{"title","detail","code"}]}`), on stderr.
 */
import { Command, CommanderError } from "commander";
import { version } from "../package.json";
import { ApiError } from "./api";
import { makeCtx, type Ctx } from "./context";
import { registerAdmin } from "./commands/admin";
import { registerOrgs } from "./commands/orgs";
import { registerApps } from "./commands/apps";
import { registerDeployments } from "./commands/deployments";
import { registerEnv } from "./commands/env";
import { registerEvents } from "./commands/events";
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
  /** Where prompts read (default process.stdin): `berth login` reads a token piped in. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Sees every API request (method, path). */
  onRequest?: (method: string, path: string) => void;
  /** Ends a running `logs` tail, as Ctrl-C does. */
  signal?: AbortSignal;
}

/** An error as the API writes them, for --json. */
export function jsonError(title: string, detail: string, code?: number): string {
  return JSON.stringify({ errors: [{ title, detail, ...(code === undefined ? {} : { code }) }] }) + "\n";
}

export function buildProgram(opts: RunOptions = {}, json = false): Command {
  const program = new Command("berth")
    .description("Berth: run Docker-image apps on your own hosts")
    .version(`berth version ${version}`, "-v, --version", "print the version")
    .option("--json", "print machine-readable JSON")
    .exitOverride()
    .configureOutput({
      writeOut: opts.stdout ?? ((s) => process.stdout.write(s)),
      writeErr: opts.stderr ?? ((s) => process.stderr.write(s)),
      // Usage errors (unknown option, bad integer) in the same JSON as the rest.
      outputError: (s, write) => write(json ? jsonError("UsageError", s.replace(/^error: /, "").trim()) : s),
    });

  const action: Action = (fn) => async (...args) => {
    const cmd = args.at(-1) as Command;
    const json = Boolean(cmd.optsWithGlobals().json);
    const ctx = await makeCtx({ json, env: opts.env, stdin: opts.stdin, onRequest: opts.onRequest, signal: opts.signal, ...(opts.stdout ? { write: opts.stdout } : {}), ...(opts.stderr ? { writeErr: opts.stderr } : {}) });
    // commander passes (...positionals, options, command); commands take (ctx, ...positionals, options).
    await (fn as (ctx: Ctx, ...a: unknown[]) => Promise<void>)(ctx, ...args.slice(0, -1));
  };

  registerSession(program, action);
  registerPush(program, action);
  registerApps(program, action);
  registerDeployments(program, action);
  registerEnv(program, action);
  registerRoutes(program, action);
  registerFlags(program, action);
  registerLogs(program, action);
  registerEvents(program, action);
  registerAdmin(program, action);
  registerOrgs(program, action);
  return program;
}

/** Runs the CLI and returns its exit code (never calls process.exit itself). */
export async function run(argv: string[], opts: RunOptions = {}): Promise<number> {
  const stderr = opts.stderr ?? ((s: string) => process.stderr.write(s));
  // Known before parsing, so even a usage error comes out as JSON.
  const json = argv.includes("--json");
  const program = buildProgram(opts, json);
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    // commander has printed its own message (through outputError).
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (json) {
      // The class names the kind of failure: UsageError, NotLoggedIn, AllInstancesCrashed, Error.
      stderr(e instanceof ApiError ? jsonError(e.title, e.detail, e.code) : jsonError((e as Error).constructor.name, (e as Error).message));
    } else {
      stderr(`FAILED\n${e instanceof ApiError ? `${e.title}: ${e.detail}` : (e as Error).message}\n`);
    }
    return 1;
  }
}
