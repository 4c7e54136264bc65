/**
 * @module One agent process per rootfs directory. A second process on the
 * same directory would discard the first one's spare upper filesystems at
 * open (they look like leftovers of a dead run) and race it on every
 * container id, so opening a directory a live process owns is refused.
 * The owner is its pid plus its start time (so a reused pid after a crash
 * does not count as alive); a process killed with -9 leaves a stale record
 * that the next one takes over.
 */
import { readFileSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";

const ownerSchema = z.object({ pid: z.number().int().positive(), start: z.string() });

/** The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or null if it is gone. */
export function processStart(pid: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
}

/** Where root's owner is recorded: its presence marks a directory some agent used. */
export const ownerFile = (root: string): string => join(root, "owner.json");

/** The pid of the live process that owns root, or null when none does (no owner, or it is gone). */
export async function liveOwner(root: string): Promise<number | null> {
  const text = await readFile(ownerFile(root), "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return null;
    throw err;
  });
  if (text === null) return null;
  const owner = ownerSchema.parse(JSON.parse(text));
  return processStart(owner.pid) === owner.start ? owner.pid : null;
}

/** Records `pid` (this process by default) as the owner of root; throws if another live process owns it. */
export async function claimRoot(root: string, pid = process.pid): Promise<void> {
  const file = ownerFile(root);
  const owner = await liveOwner(root);
  if (owner !== null && owner !== pid) throw new Error(`${root} is in use by process ${owner}: one cell agent per state directory`);
  const start = processStart(pid);
  if (start === null) throw new Error(`process ${pid} does not exist`);
  await writeFile(`${file}.tmp`, JSON.stringify({ pid, start }));
  await rename(`${file}.tmp`, file);
}
