/**
 * @module What the runtime is asked to run: one container, already resolved
 * from the instance spec (the supervisor maps protocol → ContainerSpec; the
 * image store hands over `rootfs`). Validated with zod so bad input names its field.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { commandSchema } from "../../shared/protocol/instance";
import { NO_START_COMMAND } from "../../shared/staging/launch";

const absolutePath = z.string().regex(/^\/[^\0]*$/, "must be an absolute path");
const noNul = z.string().regex(/^[^\0]*$/, "must not contain NUL");

export const containerSpecSchema = z.strictObject({
  /** Names the cgroups, the state directory and (by default) the hostname. */
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "must be 1-63 of [a-z0-9_-], starting with a letter or digit"),
  rootfs: absolutePath,
  /** Which subordinate id range the container gets (ids.ts); the rootfs must be owned or idmapped accordingly. */
  slot: z.number().int().min(0),
  command: commandSchema,
  /** "name", "uid", "name:group" or "uid:gid", resolved in the rootfs; "" is root. */
  user: noNul.default(""),
  env: z.record(z.string().regex(/^[^=\0]+$/, "env names must be non-empty and hold no '=' or NUL"), noNul),
  workdir: absolutePath.default("/"),
  hostname: z
    .string()
    .regex(/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/, "must be a hostname of at most 63 characters")
    .optional(),
  memoryMb: z.number().int().min(6, "below 6 MB a container cannot start"),
  cpuWeight: z.number().int().min(1).max(10_000).default(100),
  pidsMax: z.number().int().min(1).default(1024),
  /** Join this network namespace (made by agent/network); null gives the container a new, empty one. */
  netnsPath: absolutePath.nullable().default(null),
  /** The container's address for /etc/hosts, when networking gave it one. */
  address: z
    .string()
    .refine((a) => isIP(a) !== 0, "must be an IP address")
    .nullable()
    .default(null),
});

export type ContainerSpecInput = z.input<typeof containerSpecSchema>;
export type ContainerSpec = z.output<typeof containerSpecSchema>;

export class SpecError extends Error {
  override readonly name = "SpecError";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}


/** Parses and checks a spec; throws SpecError naming the first bad field. */
export function parseContainerSpec(input: unknown): ContainerSpec {
  const result = containerSpecSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new SpecError(issue.path.join(".") || "spec", issue.message);
  }
  // Rule 5's last guard: staging should have refused this already.
  if (result.data.command.kind === "none") throw new SpecError("command", NO_START_COMMAND);
  return result.data;
}
