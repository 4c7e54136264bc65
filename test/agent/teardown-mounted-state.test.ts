/**
 * Teardown of a cell whose state dir is a filesystem of its own (a volume
 * mounted at /var/lib/berth, here a tmpfs): that mount is the host's, not a
 * remain of the cell, so teardown empties the dir and leaves the mount (and
 * the dir under it) in place instead of refusing.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { teardownCell } from "../../agent/cell/teardown";
import { sh, uniqueTag } from "../support/netns";

describe("teardown of a cell whose state dir is a mount point", () => {
  const tag = uniqueTag(4);
  let base: string | undefined;
  let stateDir: string | undefined;

  afterAll(async () => {
    if (stateDir) await sh(["umount", stateDir]).catch(() => undefined);
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("removes the cell's files and keeps the mount", async () => {
    base = await mkdtemp(join(tmpdir(), "berth-td-mounted-"));
    stateDir = join(base, "cell");
    await mkdir(stateDir);
    await sh(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", stateDir]);
    const name = `tdm-${tag}`;
    await writeFile(join(stateDir, "cell.json"), JSON.stringify({ name, guid: "g", credential: "c" }));
    await mkdir(join(stateDir, "layers", "sha256"), { recursive: true });
    await mkdir(join(stateDir, "instances"));

    const report = await teardownCell({ name, state_dir: stateDir, cgroup_parent: `berth-tdm-${tag}` });
    expect(report).toEqual({ removedContainers: [], leftInStateDir: [] });
    expect(existsSync(stateDir)).toBe(true);
    expect(await readdir(stateDir)).toEqual([]);
    expect(await sh(["findmnt", "-n", "-o", "FSTYPE", stateDir])).toContain("tmpfs");
    // Idempotent: a second run finds the empty mount and succeeds.
    expect(await teardownCell({ name, state_dir: stateDir, cgroup_parent: `berth-tdm-${tag}` })).toEqual({ removedContainers: [], leftInStateDir: [] });
  });

  it("refuses to remove files through a mount below the state dir, also when the dir is given with a trailing slash", async () => {
    const name = `tdm-${tag}`;
    const below = join(stateDir!, "layers", "foreign");
    await mkdir(below, { recursive: true });
    await writeFile(join(stateDir!, "cell.json"), JSON.stringify({ name }));
    await sh(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", below]);
    try {
      await writeFile(join(below, "kept"), "not the cell's");
      await expect(teardownCell({ name, state_dir: `${stateDir}/`, cgroup_parent: `berth-tdm-${tag}` })).rejects.toThrow(`teardown left mounts under ${stateDir}/: ${below}`);
      expect(await readdir(below)).toEqual(["kept"]);
    } finally {
      await sh(["umount", below]);
    }
  });
});
