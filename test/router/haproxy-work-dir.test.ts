import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { makeWorkDir } from "../../agent/router/haproxy/work-dir";

const parents: string[] = [];
afterEach(() => {
  for (const p of parents.splice(0)) rmSync(p, { recursive: true, force: true });
});

function leftover(parent: string, name: string, owner?: string): string {
  const dir = path.join(parent, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, "haproxy.cfg"), "global\n");
  if (owner !== undefined) writeFileSync(path.join(dir, "owner.pid"), owner);
  return dir;
}

describe("HAProxy work dirs", () => {
  it("a daemon killed with SIGKILL leaves a dir the next one removes; live owners' and unowned dirs stay", () => {
    const parent = mkdtempSync(path.join(os.tmpdir(), "berth-workdir-test-"));
    parents.push(parent);
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!; // a real process, already gone
    const killed = leftover(parent, "berth-haproxy-killed", String(dead));
    const live = leftover(parent, "berth-haproxy-live", String(process.ppid));
    const unowned = leftover(parent, "berth-haproxy-unowned");
    const other = leftover(parent, "something-else", String(dead));

    const mine = makeWorkDir(parent);

    expect(existsSync(killed)).toBe(false);
    expect([live, unowned, other].map(existsSync)).toEqual([true, true, true]);
    expect(readFileSync(path.join(mine, "owner.pid"), "utf8")).toBe(String(process.pid));
    expect(path.basename(mine).startsWith("berth-haproxy-")).toBe(true);
  });
});
