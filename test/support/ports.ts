/**
 * @module Who holds a TCP port: the local stack refuses to start on a port
 * another process listens on (an orphaned control plane, say) and names it,
 * rather than going on against someone else's process.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { basename } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface PortHolder {
  pid: number;
  name: string;
}

/** The first process in `ss -ltnp` output's `users:(("name",pid=N,fd=M),…)`, if any. */
export function parseSsHolder(ssOutput: string): PortHolder | undefined {
  const m = /users:\(\("((?:[^"\\]|\\.)*)",pid=(\d+),/.exec(ssOutput);
  return m ? { name: m[1]!, pid: Number(m[2]) } : undefined;
}

/**
 * The process listening on TCP `port` (any address), or undefined when ss shows
 * none. Named by its program (argv[0]): ss shows the main thread's name, which
 * Node 24 calls "MainThread".
 */
export async function portHolder(port: number): Promise<PortHolder | undefined> {
  const { stdout } = await run("ss", ["-Hltnp", `( sport = :${port} )`]).catch(() => ({ stdout: "" }));
  const holder = parseSsHolder(stdout);
  if (!holder) return undefined;
  const argv0 = (await readFile(`/proc/${holder.pid}/cmdline`, "utf8").catch(() => "")).split("\0")[0];
  return argv0 ? { pid: holder.pid, name: basename(argv0) } : holder;
}

/** Whether `host:port` can be listened on right now. */
export function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** The refusal, naming the port, its holder and the variable that moves us elsewhere. */
export function portTakenMessage(port: number, holder: PortHolder | undefined, envVar: string): string {
  const who = holder ? ` by PID ${holder.pid} (${holder.name})` : "";
  return `port ${port} is in use${who}: stop it or set ${envVar}`;
}

/** Throws portTakenMessage when `host:port` cannot be listened on. */
export async function requireFreePort(host: string, port: number, envVar: string): Promise<void> {
  if (!(await canListen(host, port))) throw new Error(portTakenMessage(port, await portHolder(port), envVar));
}
