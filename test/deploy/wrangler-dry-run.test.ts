/**
 * The Worker as `wrangler deploy` would upload it (--dry-run: bundled and
 * checked, nothing sent), for the local config and [env.production]: every
 * binding declared in both (an environment inherits none), production with
 * its own apps domain. Cloudflare's network itself cannot be reached here.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");
const made: string[] = [];
afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

async function dryRun(env: string[]): Promise<{ stdout: string; files: string[] }> {
  const outdir = await mkdtemp(join(tmpdir(), "berth-dry-run-"));
  made.push(outdir);
  const { stdout } = await run(WRANGLER, ["deploy", "--dry-run", "--outdir", outdir, ...env], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
  });
  return { stdout, files: await readdir(outdir) };
}

describe("wrangler deploy --dry-run", () => {
  it.each([
    ["the local config", [], "apps.localhost"],
    ["[env.production]", ["--env", "production"], "apps.berth.example.com"],
  ])("bundles the Worker with every binding for %s", async (_label, env, appsDomain) => {
    const { stdout, files } = await dryRun(env);
    expect(files).toContain("index.js");
    for (const binding of ["env.CHANNELS (VersionChannel)", "env.SCHEDULER (Scheduler)", "env.STAGER (Stager)", "env.LOGS (AppLogs)", "env.DB (berth)"])
      expect(stdout).toContain(binding);
    expect(stdout).toContain(`env.APPS_DOMAIN ("${appsDomain}")`);
    expect(stdout).toContain("--dry-run: exiting now.");
  }, 120_000);
});
