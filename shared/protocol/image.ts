/**
 * @module Images as the protocol carries them: the layers a cell pulls (by
 * digest, verified) and, for a staged droplet, the resolved config the start
 * command, user, port and env rules read (docs/architecture.md, rules 4–6).
 */
import { z } from "zod";
import { SIGNALS } from "../staging/stop-signal";

export const digestSchema = z.string().regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/, "must be an OCI digest such as sha256:<hex>");

export const layerSchema = z.strictObject({
  digest: digestSchema,
  size: z.number().int().min(0),
  media_type: z.string().min(1),
  /** Digest of the uncompressed tar: what overlay lower directories are keyed on. */
  diff_id: digestSchema,
});

/** Pull credentials for a private registry (the package's username/password). Never logged. */
export const credentialsSchema = z.strictObject({
  username: z.string().min(1),
  password: z.string(),
});

export const exposedPortSchema = z.strictObject({
  port: z.number().int().min(1).max(65535),
  protocol: z.enum(["tcp", "udp"]),
});

/**
 * Caps on what staging keeps of an image: it is stored with the droplet and
 * copied into every instance spec and desired set, so a hostile image must
 * not make those rows and messages unbounded. Each list (Env, Entrypoint,
 * Cmd, ExposedPorts) holds at most `listEntries`; the kept config is at most
 * `configBytes` of JSON; `layers` as Docker's overlay driver allows (125
 * lower directories, rounded up). Labels are not kept.
 */
export const IMAGE_LIMITS = { listEntries: 1000, configBytes: 128 * 1024, layers: 128, textChars: 4096 } as const;

const utf8Length = (s: string) => new TextEncoder().encode(s).byteLength;

/** Why a kept image config is over IMAGE_LIMITS, or null. */
export function imageConfigOverLimits(c: { env: string[]; entrypoint: string[]; cmd: string[]; exposed_ports: unknown[]; user: string; workdir: string }): string | null {
  for (const [name, list] of [["Env", c.env], ["Entrypoint", c.entrypoint], ["Cmd", c.cmd], ["ExposedPorts", c.exposed_ports]] as const) {
    if (list.length > IMAGE_LIMITS.listEntries) return `its ${name} has ${list.length} entries, more than the ${IMAGE_LIMITS.listEntries} accepted`;
  }
  for (const [name, text] of [["User", c.user], ["WorkingDir", c.workdir]] as const) {
    if (text.length > IMAGE_LIMITS.textChars) return `its ${name} is ${text.length} characters long, more than the ${IMAGE_LIMITS.textChars} accepted`;
  }
  const bytes = utf8Length(JSON.stringify(c));
  if (bytes > IMAGE_LIMITS.configBytes) return `its Env, Entrypoint, Cmd, User, WorkingDir and ExposedPorts come to ${bytes} bytes, more than the ${IMAGE_LIMITS.configBytes} accepted`;
  return null;
}

/** The image config fields staging keeps (CF's execution_metadata plus Env), within IMAGE_LIMITS. */
export const imageConfigSchema = z.strictObject({
  env: z.array(z.string()),
  entrypoint: z.array(z.string()),
  cmd: z.array(z.string()),
  user: z.string(),
  workdir: z.string(),
  exposed_ports: z.array(exposedPortSchema),
  /** The image's STOPSIGNAL as a signal name (`SIGQUIT`); absent means SIGTERM. */
  stop_signal: z.enum(SIGNALS).optional(),
}).superRefine((c, ctx) => {
  const problem = imageConfigOverLimits(c);
  if (problem) ctx.addIssue({ code: "custom", message: `the image config is too large: ${problem}` });
});

/** What staging resolves once and pins: the droplet's image (droplets.image_spec). */
export const resolvedImageSchema = z.strictObject({
  /** The reference as the user named it (normalized), e.g. `registry.local:5000/app:1`. */
  ref: z.string().min(1),
  manifest_digest: digestSchema,
  /** The image index's digest when the reference named a multi-platform index. */
  index_digest: digestSchema.nullable().optional(),
  layers: z.array(layerSchema).max(IMAGE_LIMITS.layers),
  config: imageConfigSchema,
});

/** The image part of an instance spec: what to pull and how to authenticate. */
export const instanceImageSchema = z.strictObject({
  ref: z.string().min(1),
  manifest_digest: digestSchema,
  layers: z.array(layerSchema),
  credentials: credentialsSchema.optional(),
});

export type Layer = z.infer<typeof layerSchema>;
export type Credentials = z.infer<typeof credentialsSchema>;
export type ExposedPort = z.infer<typeof exposedPortSchema>;
export type ImageConfig = z.infer<typeof imageConfigSchema>;
export type ResolvedImage = z.infer<typeof resolvedImageSchema>;
export type InstanceImage = z.infer<typeof instanceImageSchema>;
