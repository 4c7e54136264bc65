/**
 * @module The directory a router's HAProxy works in (config, maps, runtime
 * socket). Each names its daemon in `owner.pid`; a daemon killed with SIGKILL
 * cannot remove its own, so the next one to start removes those whose owner
 * is gone.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

const PREFIX = "berth-haproxy-";
const OWNER = "owner.pid";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes `parent`'s HAProxy work dirs whose owner is gone, then makes this process's. */
export function makeWorkDir(parent: string, isAlive: (pid: number) => boolean = alive): string {
  mkdirSync(parent, { recursive: true });
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = path.join(parent, name);
    let owner: number;
    try {
      owner = Number(readFileSync(path.join(dir, OWNER), "utf8"));
    } catch {
      continue; // not ours to judge: no owner written (yet)
    }
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && !isAlive(owner)) rmSync(dir, { recursive: true, force: true });
  }
  const dir = mkdtempSync(path.join(parent, PREFIX));
  writeFileSync(path.join(dir, OWNER), String(process.pid));
  return dir;
}
