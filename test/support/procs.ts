/** @module The host's process table from /proc, for tests that must find every process something started. */
import { readdir, readFile } from "node:fs/promises";

export interface Proc {
  pid: number;
  ppid: number;
  /** R, S, Z (a zombie: dead, waiting to be reaped), … */
  state: string;
  pgrp: number;
  session: number;
  /** Clock ticks since boot: with the pid, names one process even after the pid is reused. */
  startTime: number;
  cmdline: string;
}

/** Parses /proc/PID/stat (the command name may hold spaces and parentheses, so fields start after the last ")"). */
export function parseStat(text: string): Omit<Proc, "cmdline"> {
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { pid: Number(text.slice(0, text.indexOf(" "))), state: f[0]!, ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), startTime: Number(f[19]) };
}

export async function processTable(): Promise<Proc[]> {
  const out: Proc[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = parseStat(await readFile(`/proc/${name}/stat`, "utf8"));
      const cmdline = (await readFile(`/proc/${name}/cmdline`, "utf8")).replaceAll("\0", " ").trim();
      out.push({ ...stat, cmdline });
    } catch {
      // gone while we looked
    }
  }
  return out;
}

/** `root` and every live process below it. */
export function descendants(table: Proc[], root: number): Proc[] {
  const found = table.filter((p) => p.pid === root);
  for (let i = 0; i < found.length; i++) found.push(...table.filter((p) => p.ppid === found[i]!.pid));
  return found;
}

/** Which of `procs` still run (same pid and start time, not a zombie). */
export async function stillRunning(procs: Proc[]): Promise<Proc[]> {
  const now = await processTable();
  return procs.filter((p) => now.some((q) => q.pid === p.pid && q.startTime === p.startTime && q.state !== "Z"));
}
