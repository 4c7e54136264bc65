/**
 * The real cf CLI (built unmodified from cloudfoundry/cli; ../shared/tools/cf-cli/cf
 * from the project root, or BERTH_CF_CLI), one session per home directory.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const CF = process.env.BERTH_CF_CLI ?? resolve(import.meta.dirname, "../../../shared/tools/cf-cli/cf");

export interface Cf {
  home: string;
  run(...args: string[]): Promise<{ code: number; out: string }>;
  ok(...args: string[]): Promise<string>;
  trace(...args: string[]): Promise<string>;
  /** A long-running command (`cf logs APP`): its output so far, and a stop. */
  start(...args: string[]): { output(): string; stop(): void };
}

/** A cf session in a new home (the caller removes `home`); `env` adds variables to every command. */
export async function cfSession(env: Record<string, string> = {}): Promise<Cf> {
  const home = await mkdtemp(join(tmpdir(), "berth-cf-home-"));
  // Every request goes to a trace file (CF_TRACE=<file>), quoted when a command fails.
  const vars = (extra: Record<string, string>) => ({ PATH: process.env.PATH ?? "", HOME: home, CF_HOME: home, CF_COLOR: "false", CF_TRACE: join(home, "trace.log"), ...env, ...extra });
  const exec = (args: string[], extra: Record<string, string> = {}) =>
    new Promise<{ code: number; out: string }>((res) => {
      execFile(CF, args, { env: vars(extra), timeout: 180_000 }, (err, stdout, stderr) => {
        res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
      });
    });
  return {
    home,
    run: (...args) => exec(args),
    async ok(...args) {
      const r = await exec(args);
      if (r.code !== 0) {
        const trace = await readFile(join(home, "trace.log"), "utf8").catch(() => "");
        throw new Error(`cf ${args.join(" ")} exited ${r.code}:\n${r.out}\n--- trace (end) ---\n${trace.slice(-4000)}`);
      }
      return r.out;
    },
    async trace(...args) {
      const r = await exec(args, { CF_TRACE: "true" });
      if (r.code !== 0) throw new Error(`cf ${args.join(" ")} exited ${r.code}:\n${r.out}`);
      return r.out;
    },
    start(...args) {
      const child = spawn(CF, args, { env: vars({ CF_TRACE: join(home, "trace-long.log") }), stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      return { output: () => out, stop: () => child.kill("SIGTERM") };
    },
  };
}

/** A cf session logged in as admin against `apiUrl`, targeting the space "dev" of a new organization `org` (the start of the push suites). */
export async function cfAdminInNewOrg(apiUrl: string, adminPassword: string, org: string): Promise<Cf> {
  const cf = await cfSession();
  await cf.ok("api", apiUrl, "--skip-ssl-validation");
  await cf.ok("auth", "admin", adminPassword);
  await cf.ok("create-org", org);
  await cf.ok("target", "-o", org);
  await cf.ok("create-space", "dev");
  await cf.ok("target", "-o", org, "-s", "dev");
  return cf;
}
