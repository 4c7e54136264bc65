/**
 * @module What CF's Docker builder writes for a staged image
 * (docker_app_lifecycle builder/helpers.SaveMetadata, protocol.ExecutionMetadata):
 * the `execution_metadata` JSON string and the `process_types` display
 * string, and the staging failure when there is nothing to run.
 */
import type { ImageConfig } from "../protocol/image";

/**
 * `execution_metadata`: a JSON string with keys in the Go struct's order
 * (cmd, entrypoint, workdir, ports, user), empty fields omitted, and ports
 * with capitalized `Port`/`Protocol` keys (the struct has no json tags),
 * ascending, tcp before udp — the order ImageConfig already keeps them in.
 */
export function executionMetadata(config: ImageConfig): string {
  const meta: Record<string, unknown> = {};
  if (config.cmd.length) meta.cmd = config.cmd;
  if (config.entrypoint.length) meta.entrypoint = config.entrypoint;
  if (config.workdir) meta.workdir = config.workdir;
  if (config.exposed_ports.length) meta.ports = config.exposed_ports.map((p) => ({ Port: p.port, Protocol: p.protocol }));
  if (config.user) meta.user = config.user;
  return JSON.stringify(meta);
}

/**
 * The builder's start string, for display only: Entrypoint and Cmd joined by
 * spaces, or Cmd alone without an Entrypoint. What runs is decided by
 * startCommand, never by this string.
 */
export function startDisplay(config: ImageConfig): string {
  return config.entrypoint.length ? `${config.entrypoint.join(" ")} ${config.cmd.join(" ")}`.trimEnd() : config.cmd.join(" ");
}

/** `process_types` of a Docker droplet: `{"web": <start display string>}`. */
export const processTypes = (config: ImageConfig): Record<string, string> => ({ web: startDisplay(config) });

/** CC's staging failure (staging_completion_handler.rb) when neither the image nor the process says what to run. */
export const START_COMMAND_NOT_SPECIFIED = "Start command not specified";

/** The staging error for this image and web process command, or null when staging may succeed. */
export function stagingFailure(config: ImageConfig, processCommand: string | null | undefined): string | null {
  if (processCommand?.trim()) return null;
  return config.entrypoint.length || config.cmd.length ? null : START_COMMAND_NOT_SPECIFIED;
}
