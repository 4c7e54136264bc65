/**
 * @module The cell agent's configuration: a JSON file (`--config`) with flags
 * laid over it, validated once with every default in one place.
 */
import { readFile } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { z } from "zod";
import { DEFAULT_BULK_SYNC_MS } from "./cell/heartbeat-list";
import { resourcesSchema } from "../shared/protocol/resources";

const absolutePath = z.string().refine((p) => isAbsolute(p), "must be an absolute path");

export const agentConfigSchema = z.strictObject({
  /** The control plane, e.g. http://127.0.0.1:8787. */
  api_url: z.string().url(),
  /** One-time token from `POST /v3/cells/enrollment_tokens`; needed only until the cell has registered. */
  enrollment_token: z.string().min(1).optional(),
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,22}$/, "must be 1-23 of a-z, 0-9, '-'"),
  zone: z.string().min(1).default("z1"),
  /** The cell's address: where routers reach published ports. Never loopback. */
  address: z.string().min(1),
  state_dir: absolutePath,
  capacity: resourcesSchema,
  /** Host ports the apps are published on. */
  port_range: z.strictObject({ min: z.number().int().min(1024).max(65535), max: z.number().int().min(1024).max(65535) }).default({ min: 61000, max: 61999 }),
  container_cidr: z.string().default("10.254.0.0/22"),
  /** Network namespaces kept prepared, so a start only publishes its port (agent/network/manager.ts). */
  network_pool_size: z.number().int().min(0).max(64).default(4),
  /** Further networks containers may not reach (a control plane or registry on another host); wins over allow_networks. */
  deny_networks: z.array(z.string()).default([]),
  /**
   * Private networks containers may reach after all (Cloud Foundry's security
   * groups): by default only public addresses are open (agent/network/nft-rules.ts).
   */
  allow_networks: z.array(z.string()).default([]),
  cgroup_parent: z.string().regex(/^[a-z0-9_-]+$/).default("berth"),
  heartbeat_interval_ms: z.number().int().min(100).default(5000),
  /** The longest a heartbeat goes without listing the instances and their usage (agent/cell/heartbeat-list.ts). */
  bulk_sync_interval_ms: z.number().int().min(100).default(DEFAULT_BULK_SYNC_MS),
  log_ship_interval_ms: z.number().int().min(50).default(250),
  /**
   * The layer cache's budget: bytes, or a percentage of the filesystem holding
   * the state dir (the rest is for containers' disks and logs). A layer that
   * would pass it evicts least recently used layers no container holds, or
   * fails the pull (agent/images/cache-budget.ts).
   */
  layer_cache_max_bytes: z.union([z.number().int().min(0), z.string().regex(/^\d{1,2}(\.\d+)?%$/, 'must be bytes or a percentage such as "50%"')]).default("50%"),
  /** Shrinks health check timeouts and intervals (tests); 1 in production. */
  time_scale: z.number().positive().max(1).default(1),
  stop_grace_ms: z.number().int().min(0).default(10_000),
  /** A running instance's stop → its stop signal, while routers take it out (runner.ts). */
  shutdown_delay_ms: z.number().int().min(0).default(1_000),
  /** Port of GET /metrics (Prometheus) on the cell's address; none when absent, 0 takes a free one. */
  metrics_port: z.number().int().min(0).max(65535).optional(),
  log_level: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

export type AgentConfig = z.output<typeof agentConfigSchema>;

/**
 * What `teardown` needs: the fields that name the cell's host resources. Not
 * strict, so the daemon's own config file serves as is.
 */
export const teardownConfigSchema = agentConfigSchema.pick({ name: true, state_dir: true, cgroup_parent: true }).strip();

export type TeardownConfig = z.output<typeof teardownConfigSchema>;

/** Reads the file (if any), lays `overrides` over it and validates; the error names the field. */
export function loadAgentConfig(file: string | undefined, overrides: Record<string, unknown>): Promise<AgentConfig> {
  return loadConfig(agentConfigSchema, file, overrides);
}

export function loadTeardownConfig(file: string | undefined, overrides: Record<string, unknown>): Promise<TeardownConfig> {
  return loadConfig(teardownConfigSchema, file, overrides);
}

async function loadConfig<S extends z.ZodType>(schema: S, file: string | undefined, overrides: Record<string, unknown>): Promise<z.output<S>> {
  const base = file ? (JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>) : {};
  const merged = { ...base, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
  const result = schema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new Error(`agent config: ${issue.path.join(".") || "(root)"} ${issue.message}`);
  }
  return result.data;
}
