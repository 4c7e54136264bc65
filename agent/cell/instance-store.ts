/**
 * @module The specs of the instances this cell runs, one JSON file each under
 * the state directory, so an agent that restarts knows what to re-adopt
 * (Nomad's client state; the runtime keeps its own per-container handle).
 * Pull credentials are never written: a re-adopted container needs no pull.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { instanceSpecSchema, type InstanceSpec } from "../../shared/protocol/instance";
import { withoutCredentials } from "./reconcile";

export class InstanceStore {
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, "instances");
  }

  private file(guid: string): string {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(guid)) throw new Error(`invalid instance guid ${JSON.stringify(guid)}`);
    return join(this.dir, `${guid}.json`);
  }

  async save(spec: InstanceSpec): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = this.file(spec.instance_guid);
    // Write aside and rename: a crash mid-write never leaves half a spec.
    await writeFile(`${file}.tmp`, JSON.stringify(withoutCredentials(spec)), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }

  async remove(guid: string): Promise<void> {
    await rm(this.file(guid), { force: true });
  }

  /** Every saved spec; unreadable files are reported, not fatal. */
  async list(onBad: (file: string, error: Error) => void = () => undefined): Promise<InstanceSpec[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    const specs: InstanceSpec[] = [];
    for (const name of names.filter((n) => n.endsWith(".json"))) {
      try {
        specs.push(instanceSpecSchema.parse(JSON.parse(await readFile(join(this.dir, name), "utf8"))));
      } catch (e) {
        onBad(name, e as Error);
      }
    }
    return specs;
  }
}
