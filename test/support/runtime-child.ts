/**
 * A stand-in agent process for the re-adoption test: creates the container
 * described by BERTH_SPEC, prints the init's pid and waits to be kill -9'd.
 */
import { Runtime } from "../../agent/runtime/runtime";

const runtime = await Runtime.open({ stateDir: process.env.BERTH_STATE_DIR!, cgroupParent: process.env.BERTH_CGROUP_PARENT! });
const c = await runtime.create(JSON.parse(process.env.BERTH_SPEC!));
process.stdout.write(`${c.pid}\n`);
setInterval(() => undefined, 60_000);
