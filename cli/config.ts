/**
 * @module The CLI's saved session: API target, token and targeted organization and space, in
 * ~/.berth/config.json (BERTH_HOME overrides the folder), readable only by its owner.
 */
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";

export const ConfigSchema = z.object({
  api: z.string().url().optional(),
  token: z.string().optional(),
  org: z.object({ guid: z.string(), name: z.string() }).optional(),
  space: z.object({ guid: z.string(), name: z.string() }).optional(),
  skipTlsValidation: z.boolean().optional(),
});
export type Config = z.infer<typeof ConfigSchema>;

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.BERTH_HOME ?? join(homedir(), ".berth");
}

export async function loadConfig(env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(join(configDir(env), "config.json"), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw e;
  }
  const parsed = ConfigSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${join(configDir(env), "config.json")} is not a valid Berth config; run 'berth api' and 'berth login' again`);
  return parsed.data;
}

export async function saveConfig(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const dir = configDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, "config.json");
  await writeFile(file, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
  // writeFile keeps an existing file's mode: make sure a token never sits in a readable file.
  await chmod(file, 0o600);
}
