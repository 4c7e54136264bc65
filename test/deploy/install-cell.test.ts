/**
 * The production install (scripts/install-cell.sh) into a scratch root, from
 * the tree the global setup built: Node 24 (from the npm registry's `node`
 * package, this machine's system Node being 20), the built agent and router
 * with only their npm dependencies, and the systemd units — which
 * `systemd-analyze verify` checks against that root and `systemd-analyze
 * security` scores. PID 1 here is not systemd, so the units cannot be started.
 */
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const UNITS = ["berth-agent", "berth-router"] as const;
let root: string;
let prefix: string;
let installLog: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-install-"));
  prefix = join(root, "opt/berth");
  // npm finds what it needs in the cache scripts/setup.sh filled; the system's Node (older) stays first on PATH.
  const env = { ...process.env, BERTH_INSTALL_ROOT: root, BERTH_SKIP_APT: "1", npm_config_prefer_offline: "true", PATH: `/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin` };
  installLog = (await run("bash", [join(ROOT, "scripts/install-cell.sh")], { env, maxBuffer: 16 << 20 })).stdout;
  // systemd's own units, which verify resolves the Berth units' dependencies against.
  await mkdir(join(root, "usr/lib/systemd"), { recursive: true });
  await cp("/usr/lib/systemd/system", join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
}, 240_000);
afterAll(() => rm(root, { recursive: true, force: true }));

describe("install-cell.sh", () => {
  it("installs Node 24 and the agent, which checks this host from the installed tree", async () => {
    const node = join(prefix, "node/bin/node");
    expect((await run(node, ["-v"])).stdout.trim()).toBe("v24.21.0");
    const check = await run(node, [join(prefix, "dist/agent/main.js"), "check-host"]);
    expect(check.stdout).toContain("this host can run Berth cells");
    expect(installLog).toContain("this host can run Berth cells");
    expect((await run(node, [join(prefix, "dist/agent/router/main.js"), "--help"])).stdout).toMatch(/^Usage: berth-router/);
  });

  it("installs the run-time dependencies only: no compiler, test or Worker tooling", async () => {
    const modules = await readdir(join(prefix, "node_modules"));
    for (const dep of ["commander", "pino", "undici", "ws", "zod"]) expect(modules).toContain(dep);
    for (const dev of ["wrangler", "vitest", "tsx", "esbuild", "typescript", "node-gyp", "hono", "drizzle-orm", "tar-stream"]) expect(modules).not.toContain(dev);
  });

  it.each(UNITS)("%s.service passes systemd-analyze verify", async (unit) => {
    const r = await run("systemd-analyze", ["verify", `--root=${root}`, `${unit}.service`]);
    expect(r.stderr).toBe("");
  });

  it("scores the units with systemd-analyze security: the router hardened, the agent root by design", async () => {
    const score = async (unit: string) => {
      const out = (await run("systemd-analyze", ["security", "--offline=yes", `--root=${root}`, `${unit}.service`]).catch((e: { stdout: string }) => e)).stdout;
      const m = /Overall exposure level for \S+: ([\d.]+) (\w+)/.exec(out);
      if (!m) throw new Error(`no score in:\n${out}`);
      console.log(`systemd-analyze security ${unit}.service: ${m[1]} ${m[2]}`);
      return Number(m[1]);
    };
    // The agent keeps the host's mount namespace (re-adoption) and runs as root: see its unit's comments.
    expect(await score("berth-router")).toBeLessThan(2.5);
    expect(await score("berth-agent")).toBeGreaterThan(await score("berth-router"));
  });
});
