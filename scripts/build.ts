/**
 * @module `npm run build`: the JavaScript that runs outside development, so no
 * TypeScript loader runs in production (`node dist/agent/main.js`).
 *
 * - dist/agent/main.js (the cell agent) and dist/agent/router/main.js (the
 *   router): our code in one file each; npm packages stay imports, installed
 *   with `npm ci --omit=dev` beside dist/.
 *   The native addon and berth-init are copied to dist/agent/build/Release/,
 *   where agent/native/index.ts looks relative to the bundle (the addon also
 *   to dist/agent/router/build/Release/, for the router's bundle).
 * - dist/cli/: the `berth` CLI as an npm package of its own — cli.js with
 *   every dependency inside, berth.js launching it with Node's compile cache
 *   on (the bundle's bytecode is kept, so a run does not compile 2.5 MB of
 *   JavaScript again), and a package.json without dependencies, so `npm i -g`
 *   of it pulls none of the server's.
 *
 * Runs on Node's type stripping (`node scripts/build.ts`): no relative imports.
 */
import { build } from "esbuild";
import { chmod, copyFile, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const OUT = join(ROOT, "dist");
const NATIVE = join(ROOT, "agent/native/build/Release");
const NODE_TARGET = "node24";

/** Builds into a fresh directory, then swaps it for dist/: a daemon another test run started from dist/ keeps finding its files. */
export async function buildAll(): Promise<void> {
  const out = `${OUT}.${process.pid}`;
  await rm(out, { recursive: true, force: true });
  await buildInto(out);
  const old = `${OUT}.old.${process.pid}`;
  await rename(OUT, old).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "ENOENT") throw e;
  });
  await rename(out, OUT);
  await rm(old, { recursive: true, force: true });
}

async function buildInto(out: string): Promise<void> {
  const outdir = relative(ROOT, out);
  await build({
    absWorkingDir: ROOT,
    entryPoints: ["agent/main.ts", "agent/router/main.ts"],
    outbase: ".",
    outdir,
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: NODE_TARGET,
    sourcemap: true,
    logLevel: "warning",
  });
  const nativeOut = join(out, "agent/build/Release");
  await mkdir(nativeOut, { recursive: true });
  for (const f of ["berth_native.node", "berth-init"]) await copyFile(join(NATIVE, f), join(nativeOut, f));
  await chmod(join(nativeOut, "berth-init"), 0o755);
  // The router's HAProxy path makes its access-line pipe with the addon.
  const routerNativeOut = join(out, "agent/router/build/Release");
  await mkdir(routerNativeOut, { recursive: true });
  await copyFile(join(NATIVE, "berth_native.node"), join(routerNativeOut, "berth_native.node"));

  const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string; description: string; license?: string };
  await build({
    absWorkingDir: ROOT,
    entryPoints: ["cli/entry.ts"],
    outfile: `${outdir}/cli/cli.js`,
    bundle: true,
    platform: "node",
    format: "esm",
    target: NODE_TARGET,
    // Bundled CommonJS packages call require(): give the ES module one.
    banner: { js: 'import { createRequire as __berthRequire } from "node:module";\nconst require = __berthRequire(import.meta.url);' },
    logLevel: "warning",
  });
  // The cache must be on before the bundle loads, hence a launcher of its own.
  await writeFile(join(out, "cli/berth.js"), '#!/usr/bin/env node\nimport module from "node:module";\n\nmodule.enableCompileCache?.();\nawait import("./cli.js");\n');
  await chmod(join(out, "cli/berth.js"), 0o755);
  const cliPkg = {
    name: "berth",
    version: pkg.version,
    description: `${pkg.description}: the berth CLI`,
    type: "module",
    bin: { berth: "berth.js" },
    files: ["berth.js", "cli.js"],
    engines: { node: ">=24" },
  };
  await writeFile(join(out, "cli/package.json"), `${JSON.stringify(cliPkg, null, 2)}\n`);
}

if (import.meta.filename === resolve(process.argv[1] ?? "")) {
  await buildAll();
  console.log("build: dist/agent/main.js, dist/agent/router/main.js, dist/cli/");
}
