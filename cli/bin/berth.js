#!/usr/bin/env node
// Development entry point (`npx berth` in a checkout): the TypeScript CLI through
// tsx's loader. The CLI users install is built JavaScript (dist/cli, npm run build).
import { register } from "tsx/esm/api";

register();
await import("../entry.ts");
