/**
 * Starts the control plane on workerd without `wrangler dev`'s proxy: the
 * Miniflare that wrangler itself runs, given the Worker options wrangler reads
 * from a config (bindings, Durable Objects, D1, compatibility) and a bundled
 * Worker, with its local D1 and Durable Object storage in `persistDir` laid out
 * as `wrangler ... --persist-to` lays it out (so `wrangler d1 migrations apply
 * --local --persist-to` prepares it). Requests go straight to workerd's socket;
 * `wrangler dev` puts a proxy Worker in a second workerd process in front of it.
 * For benches that measure the control plane behind that proxy.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import type * as Wrangler from "wrangler";
import type { D1Database } from "@cloudflare/workers-types";
import { freePort } from "./control-plane";

/** The little of Miniflare used here (the package's own types are another version's: see below). */
interface MiniflareLike {
  ready: Promise<URL>;
  getD1Database(binding: string, worker?: string): Promise<unknown>;
  dispose(): Promise<void>;
}

// wrangler's own Miniflare (and so its workerd), not the older one the vitest plugin pulled in.
const wranglerRequire = createRequire(createRequire(import.meta.url).resolve("wrangler"));
const miniflare = wranglerRequire("miniflare") as {
  Miniflare: new (options: unknown) => MiniflareLike;
  /** wrangler's getPlatformProxy passes its (v4-shaped) Worker options through this too. */
  convertV4MiniflareOptions(options: unknown): unknown;
};
const { unstable_getMiniflareWorkerOptions } = wranglerRequire("wrangler") as typeof Wrangler;

export interface WorkerdControlPlane {
  url: string;
  /** The Worker's D1 binding, for seeding. */
  d1(): Promise<D1Database>;
  stop(): Promise<void>;
}

export async function startWorkerdControlPlane(opts: {
  /** A wrangler config whose `main` is an already bundled Worker (no_bundle). */
  config: string;
  persistDir: string;
  vars: Record<string, string>;
  log?: (chunk: string) => void;
  /** workerd's V8 inspector on this port (DevTools, CPU profiles of the Worker and its Durable Objects). */
  inspectorPort?: number;
}): Promise<WorkerdControlPlane> {
  // The bundle is one ES module: no module rules to find others by.
  const { workerOptions: { modulesRules: _rules, ...workerOptions }, main } = unstable_getMiniflareWorkerOptions(opts.config);
  if (!main) throw new Error(`${opts.config} names no main module`);
  const port = await freePort();
  const options = {
    host: "127.0.0.1",
    port,
    resourcePersistencePath: join(opts.persistDir, "v3"),
    ...(opts.inspectorPort ? { inspectorPort: opts.inspectorPort } : {}),
    // The Worker's console, one line per call (workerd's structured logs).
    handleStructuredLogs(line: { message: string }) {
      opts.log?.(`${line.message}\n`);
    },
    workers: [{
      ...workerOptions,
      name: "berth",
      modules: true,
      scriptPath: main,
      // The cron backstop is left out as wrangler dev leaves it out: the scheduler's alarm drives convergence.
      cronTriggers: [],
      bindings: { ...(workerOptions.bindings ?? {}), ...opts.vars },
    }],
  };
  const mf = new miniflare.Miniflare(miniflare.convertV4MiniflareOptions(options));
  const url = (await mf.ready).origin;
  return {
    url,
    d1: () => mf.getD1Database("DB", "berth") as unknown as Promise<D1Database>,
    stop: () => mf.dispose(),
  };
}
