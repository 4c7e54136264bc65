/**
 * @module The cell's identity: registered once with an enrollment token, then
 * kept in `<state_dir>/cell.json` (mode 0600) so a restarted agent reuses it.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { AgentConfig } from "../config";
import { register } from "./control-plane";

const identitySchema = z.strictObject({ guid: z.string().min(1), name: z.string(), credential: z.string().min(1), api_url: z.string() });
export type CellIdentity = z.infer<typeof identitySchema>;

export async function loadOrRegister(config: AgentConfig): Promise<CellIdentity> {
  const file = join(config.state_dir, "cell.json");
  try {
    const saved = identitySchema.parse(JSON.parse(await readFile(file, "utf8")));
    if (saved.api_url === config.api_url) return saved;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`${file} is unreadable: ${(e as Error).message}`);
  }
  if (!config.enrollment_token) throw new Error("this cell has not registered yet: give it an enrollment token (--enrollment-token)");
  const reg = await register(config.api_url, {
    enrollment_token: config.enrollment_token,
    name: config.name,
    zone: config.zone,
    address: config.address,
    capacity: config.capacity,
  });
  const identity: CellIdentity = { guid: reg.guid, name: reg.name, credential: reg.credential, api_url: config.api_url };
  await mkdir(config.state_dir, { recursive: true, mode: 0o700 });
  await writeFile(`${file}.tmp`, JSON.stringify(identity), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
  return identity;
}
