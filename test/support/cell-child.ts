/**
 * A stand-in cell agent process for the teardown test: registers nothing (it
 * writes the identity file a registration would), opens the cell described
 * by BERTH_CELL (TestCellOptions) and starts the instances of BERTH_SPECS
 * through the real driver (with its network pool full). Prints one JSON line per instance
 * ({guid, hostPort, pid}), then "ready". A stdin line "stop GUID" stops that
 * instance as the agent does (SIGTERM, exit, destroy) and prints "stopped
 * GUID". Nothing watches the others: the test kill -9s this process to leave
 * them as an agent crash would.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { RunningContainer } from "../../agent/supervisor/driver";
import type { InstanceSpec } from "../../shared/protocol/instance";
import { openTestCell, type TestCellOptions } from "./cell";

const options = JSON.parse(process.env.BERTH_CELL!) as TestCellOptions;
const specs = JSON.parse(process.env.BERTH_SPECS!) as InstanceSpec[];
const { driver, network } = await openTestCell(options);
await writeFile(join(options.stateDir, "cell.json"), JSON.stringify({ guid: "stand-in", name: options.name, credential: "none", api_url: "http://127.0.0.1:1" }), { mode: 0o600 });
const running = new Map<string, RunningContainer>();
for (const spec of specs) {
  const c = await driver.start(spec, { signal: new AbortController().signal });
  running.set(spec.instance_guid, c);
  process.stdout.write(`${JSON.stringify({ guid: spec.instance_guid, hostPort: c.hostPort, pid: c.pid })}\n`);
}
// The network pool (if any) refilled behind the starts: full before the test looks.
await network.prewarm();
process.stdout.write("ready\n");
for await (const line of createInterface({ input: process.stdin })) {
  const [verb, guid] = line.split(" ");
  const c = running.get(guid ?? "");
  if (verb !== "stop" || !c) throw new Error(`unknown command ${JSON.stringify(line)}`);
  await c.signal("SIGTERM");
  await c.exited;
  await c.destroy();
  process.stdout.write(`stopped ${guid}\n`);
}
