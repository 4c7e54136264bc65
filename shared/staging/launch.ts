/**
 * @module How an instance of a staged image is launched (docs/architecture.md, rules 5–6,
 * CF's launcher and Cloud Controller): the command, the run user, the port
 * and the working directory. Pure; the cell executes the result.
 */
import type { ExposedPort, ImageConfig } from "../protocol/image";
import type { z } from "zod";
import type { commandSchema } from "../protocol/instance";

export type Command = z.infer<typeof commandSchema>;

/** The launcher's last guard, when the image has neither Entrypoint nor Cmd and no command is set. */
export const NO_START_COMMAND = "No start command found or specified";

/**
 * A user-set command runs as `/bin/sh -c COMMAND`; otherwise `Entrypoint ++ Cmd`
 * is exec'd directly (argv[0] looked up on the image PATH); neither → none.
 */
export function startCommand(processCommand: string | null | undefined, config: Pick<ImageConfig, "entrypoint" | "cmd">): Command {
  if (processCommand?.trim()) return { kind: "shell", script: processCommand };
  const argv = [...config.entrypoint, ...config.cmd];
  return argv.length ? { kind: "exec", argv } : { kind: "none" };
}

/** The argv a cell executes for a command; throws the launcher's error for none. */
export function commandArgv(command: Command): string[] {
  if (command.kind === "shell") return ["/bin/sh", "-c", command.script];
  if (command.kind === "exec") return command.argv;
  throw new Error(NO_START_COMMAND);
}

/** CC's DEFAULT_HTTP_PORT, for images exposing no TCP port. */
export const DEFAULT_PORT = 8080;

/** The lowest exposed TCP port, else 8080. UDP ports are recorded but never routed. */
export function appPort(ports: readonly ExposedPort[]): number {
  const tcp = ports.filter((p) => p.protocol === "tcp").map((p) => p.port);
  return tcp.length ? Math.min(...tcp) : DEFAULT_PORT;
}

/** The process's user if set, else the image's User, else root (CC ProcessModel#run_action_user for Docker). */
export function runUser(processUser: string | null | undefined, imageUser: string | null | undefined): string {
  return processUser?.trim() || imageUser?.trim() || "root";
}

/** The launcher changes into the image's WorkingDir, defaulting to `/`. */
export const runWorkdir = (config: Pick<ImageConfig, "workdir">): string => config.workdir || "/";
