/**
 * The `berth` CLI as a user installs it: dist/cli (scripts/build.ts, built by
 * the global setup) packed by npm and installed with `npm i -g` into a scratch
 * prefix, offline. It brings no dependencies (none of the server's) and runs.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
let dir: string;
let prefix: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-cli-pkg-"));
  prefix = join(dir, "prefix");
  const { stdout } = await run("npm", ["pack", "--silent", "--pack-destination", dir, join(ROOT, "dist/cli")]);
  await run("npm", ["install", "-g", "--offline", "--no-fund", "--no-audit", "--prefix", prefix, join(dir, stdout.trim())]);
}, 120_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("the berth package", () => {
  it("declares no dependencies and installs none", async () => {
    const installed = join(prefix, "lib/node_modules/berth");
    const pkg = JSON.parse(await readFile(join(installed, "package.json"), "utf8"));
    expect(pkg.dependencies).toBeUndefined();
    expect((await readdir(installed)).sort()).toEqual(["berth.js", "cli.js", "package.json"]);
  });

  it("runs as `berth` from the prefix's bin", async () => {
    const { stdout } = await run(join(prefix, "bin/berth"), ["--help"], { env: { ...process.env, HOME: dir } });
    expect(stdout).toMatch(/^Usage: berth /);
    expect(stdout).toContain("push");
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8"));
    expect((await run(join(prefix, "bin/berth"), ["--version"])).stdout.trim()).toBe(`berth version ${pkg.version}`);
  });
});
