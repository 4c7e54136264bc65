/** @module The `berth` command: cli/bin/berth.js in development, dist/cli/berth.js built (scripts/build.ts). */
import { run } from "./main";

process.exitCode = await run(process.argv.slice(2));
