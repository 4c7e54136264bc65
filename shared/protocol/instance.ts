/**
 * @module One instance (Diego's ActualLRP) as the protocol carries it: the spec
 * the control plane snapshots at start/restart/scale-up, and the report a cell
 * sends back whenever the instance changes state and with every heartbeat that
 * lists the cell's instances.
 */
import { z } from "zod";
import { SIGNALS } from "../staging/stop-signal";
import { instanceImageSchema } from "./image";

/**
 * docs/architecture.md, rule 5: a user-set command runs as `/bin/sh -c COMMAND` ("shell");
 * otherwise `Entrypoint ++ Cmd` is exec'd directly, argv[0] found on the image
 * PATH ("exec"); neither → "none", and the cell fails the instance with
 * "No start command found or specified" (the launcher's last guard).
 */
export const commandSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("shell"), script: z.string().min(1) }),
  z.strictObject({ kind: z.literal("exec"), argv: z.array(z.string()).min(1) }),
  z.strictObject({ kind: z.literal("none") }),
]);

/** CF's health checks (process.health_check); timeouts in seconds as CC keeps them. */
export const healthCheckSchema = z.strictObject({
  type: z.enum(["port", "process", "http"]),
  /** Start timeout: how long the instance may take to become healthy (CF default 60 s). */
  timeout_s: z.number().int().min(1),
  /** One probe's timeout. */
  invocation_timeout_s: z.number().int().min(1),
  /** Time between probes once running. */
  interval_s: z.number().int().min(1),
  /** Path for `http` checks. */
  endpoint: z.string().startsWith("/").nullable(),
});

export const instanceSpecSchema = z.strictObject({
  instance_guid: z.string().min(1),
  process_guid: z.string().min(1),
  /** The process version snapshotted with the instance; a restart changes it. */
  process_version: z.string().min(1),
  index: z.number().int().min(0),
  app_guid: z.string().min(1),
  app_name: z.string().min(1),
  process_type: z.string().min(1),
  image: instanceImageSchema,
  command: commandSchema,
  /** Process user, else the image's User, else root; name or uid[:gid], resolved in the image. */
  user: z.string().min(1),
  /** Final environment: image Env, then app env, then platform vars (rule 5). */
  env: z.record(z.string(), z.string()),
  workdir: z.string().min(1),
  /** The container port the app listens on (rule 6); the cell publishes it on a host port. */
  port: z.number().int().min(1).max(65535),
  memory_mb: z.number().int().min(1),
  disk_mb: z.number().int().min(1),
  health_check: healthCheckSchema,
  /** Sent first on stop (the image's STOPSIGNAL), SIGKILL after the grace period; absent means SIGTERM. */
  stop_signal: z.enum(SIGNALS).optional(),
  /** The registry access (CA bundle, insecure list) this spec expects the cell to pull with. */
  registry_access_version: z.number().int().min(0),
});

/**
 * States a cell reports. STARTING: the container is being prepared or its health
 * check has not passed; RUNNING: healthy; CRASHED: exited or failed its checks
 * (the control plane decides about restarts); STOPPED: gone after a stop.
 */
export const reportedStateSchema = z.enum(["STARTING", "RUNNING", "CRASHED", "STOPPED"]);

export const exitSchema = z.strictObject({
  status: z.number().int().nullable(),
  signal: z.string().nullable(),
  oom: z.boolean(),
});

export const usageSchema = z.strictObject({
  /** Fraction of one core, averaged over the last interval. */
  cpu: z.number().min(0),
  mem: z.number().int().min(0),
  disk: z.number().int().min(0),
});

export const instanceReportSchema = z.strictObject({
  instance_guid: z.string().min(1),
  state: reportedStateSchema,
  /** When the instance entered `state`, ms since the epoch (cell clock). */
  since: z.number().int().min(0),
  host_port: z.number().int().min(1).max(65535).nullable(),
  /** The cell's own count of crashes it saw; informational — the control plane keeps the authoritative count. */
  crash_count: z.number().int().min(0),
  exit: exitSchema.nullable(),
  /** Why: "No start command found or specified", "health check timed out", "out of memory"… */
  reason: z.string().max(1024).nullable(),
  usage: usageSchema.nullable(),
});

export type Command = z.infer<typeof commandSchema>;
export type HealthCheck = z.infer<typeof healthCheckSchema>;
export type InstanceSpec = z.infer<typeof instanceSpecSchema>;
export type ReportedState = z.infer<typeof reportedStateSchema>;
export type Exit = z.infer<typeof exitSchema>;
export type Usage = z.infer<typeof usageSchema>;
export type InstanceReport = z.infer<typeof instanceReportSchema>;
