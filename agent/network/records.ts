/**
 * @module What the agent remembers on disk about each container's network:
 * one JSON file per container, written before anything is created (a crash
 * mid-setup leaves a record for recovery to clean up) and removed last.
 * Writes go through a temporary file and a rename, so a record is whole or
 * absent.
 */
import { renameSync, writeFileSync } from "node:fs";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { isIPv4 } from "node:net";
import { join } from "node:path";
import { z } from "zod";

/** Container ids become file names and nft-free labels: keep them plain. */
export const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

const recordSchema = z.strictObject({
  version: z.literal(1),
  containerId: z.string().regex(CONTAINER_ID),
  slot: z.number().int().min(0),
  hostIfname: z.string(),
  netnsPath: z.string(),
  hostIp: z.string().refine((s) => isIPv4(s)),
  containerIp: z.string().refine((s) => isIPv4(s)),
  hostPort: z.number().int(),
  appPort: z.number().int(),
});

export type NetworkRecord = z.infer<typeof recordSchema>;

const hostSchema = z.strictObject({
  version: z.literal(1),
  /** ip_forward was off and the agent turned it on: forward only container traffic. */
  forwardingEnabledByBerth: z.boolean(),
});

export type HostRecord = z.infer<typeof hostSchema>;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Synchronous: a few syscalls on a file this small take microseconds, where
 * each thread-pool round trip of fs/promises waits behind the pulls and
 * mounts of other starts (a record is written on every start).
 */
function writeAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(value) + "\n", { mode: 0o600 });
  renameSync(tmp, path);
}

export class RecordStore {
  private readonly containersDir: string;
  private readonly hostPath: string;

  constructor(stateDir: string) {
    this.containersDir = join(stateDir, "containers");
    this.hostPath = join(stateDir, "host.json");
  }

  async init(): Promise<void> {
    await mkdir(this.containersDir, { recursive: true, mode: 0o700 });
  }

  /** Every whole record; unreadable files are returned apart so recovery can report and remove them. */
  async readAll(): Promise<{ records: NetworkRecord[]; unreadable: string[] }> {
    const records: NetworkRecord[] = [];
    const unreadable: string[] = [];
    for (const name of await readdir(this.containersDir)) {
      const path = join(this.containersDir, name);
      if (!name.endsWith(".json")) {
        await rm(path, { force: true }); // a .tmp left by a crash mid-write
        continue;
      }
      const parsed = recordSchema.safeParse(parseJson(await readFile(path, "utf8").catch(() => "")));
      if (parsed.success && `${parsed.data.containerId}.json` === name) records.push(parsed.data);
      else unreadable.push(path);
    }
    return { records, unreadable };
  }

  async put(record: NetworkRecord): Promise<void> {
    writeAtomic(join(this.containersDir, `${record.containerId}.json`), record);
  }

  async remove(containerId: string): Promise<void> {
    await rm(join(this.containersDir, `${containerId}.json`), { force: true });
  }

  async removeFile(path: string): Promise<void> {
    await rm(path, { force: true });
  }

  async readHost(): Promise<HostRecord | undefined> {
    const text = await readFile(this.hostPath, "utf8").catch(() => undefined);
    if (text === undefined) return undefined;
    const parsed = hostSchema.safeParse(parseJson(text));
    return parsed.success ? parsed.data : undefined;
  }

  async putHost(record: HostRecord): Promise<void> {
    writeAtomic(this.hostPath, record);
  }
}
