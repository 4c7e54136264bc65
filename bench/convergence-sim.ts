/**
 * Convergence at scale: many light fake cells speaking the real agent protocol
 * (the agent's own ControlPlaneClient: register, desired-set long-poll,
 * instance reports, heartbeats) against the real control plane under
 * `wrangler dev` with its local D1. A fake cell "runs" an instance by
 * reporting it RUNNING at once, and stops one by reporting STOPPED; no
 * containers are made (that is the agent's bench), so the figures are the
 * control plane's: scheduler passes, long-polls, report handling.
 *
 * Measured ("all RUNNING" = every desired index has a running instance on some
 * cell; SUSPECT/EVACUATING copies may run beside it for a while):
 *   A. every app started (the last step of a push) → all instances RUNNING;
 *   B. diego_docker turned off → every instance stopped on its cell;
 *   C. diego_docker back on → all RUNNING again;
 *   D. one cell silenced → its instances RUNNING elsewhere.
 * And what a big fleet must not suffer: the p99 of a start request (requests
 * only wake the scheduler), heartbeat round trips, the longest gap between a
 * live cell's accepted heartbeats (over the TTL, the cell would count as lost
 * though it kept sending), and live instances wrongly replaced.
 * Peer: Diego's documented figures — flag off stops apps "within a few
 * convergence cycles, on the order of a minute" (30 s diego_sync + 30 s BBS
 * convergence), a cell is gone after its 15 s presence TTL and its LRPs are
 * re-auctioned on the next convergence (CellDisappeared triggers one at once).
 *
 * Apps are seeded straight into D1 (with STAGED droplets) before the Worker
 * starts: staging is not what this measures.
 *
 * Run: npx tsx bench/convergence-sim.ts [--cells 100] [--apps 200] [--instances 10] [--ttl-ms 15000] [--beat-ms 5000]
 * (the sizes: --cells 100 --apps 200, --cells 250 --apps 500, --cells 500 --apps 1000)
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { randomUUID } from "node:crypto";
import { nextHeartbeatDelay } from "../agent/cell/backoff";
import { ControlPlaneClient, register } from "../agent/cell/control-plane";
import type { InstanceReport } from "../shared/protocol/instance";
import type { ResolvedImage } from "../shared/protocol/image";
import { startControlPlane, type ControlPlane } from "../test/support/control-plane";
import { arg } from "./args";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");

const CELLS = arg("cells", 100);
const APPS = arg("apps", 200);
const PER_APP = arg("instances", 10);
const TTL_MS = arg("ttl-ms", 15_000);
const BEAT_MS = arg("beat-ms", 5000);
const TOTAL = APPS * PER_APP;

const D = (c: string) => `sha256:${c.repeat(64)}`;
const IMAGE: ResolvedImage = {
  ref: "registry.bench:5000/web:1", manifest_digest: D("a"),
  layers: [{ digest: D("b"), size: 1_000_000, media_type: "application/vnd.oci.image.layer.v1.tar+gzip", diff_id: D("c") }],
  config: { env: ["PATH=/bin"], entrypoint: ["/bin/httpd"], cmd: ["-f"], user: "", workdir: "", exposed_ports: [{ port: 8080, protocol: "tcp" }] },
};

const q = (s: string | null) => (s === null ? "NULL" : `'${s.replaceAll("'", "''")}'`);

/** SQL seeding one space, the flag on, and APPS stopped apps with a current STAGED droplet. */
function seedSql(space: string, appGuids: string[], first: number): string {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const lines = first > 0 ? [] : [
    `INSERT INTO spaces (guid, name, organization_guid) SELECT ${q(space)}, 'bench', guid FROM organizations WHERE name = 'default';`,
    `INSERT INTO feature_flags (name, enabled, custom_error_message, updated_at) VALUES ('diego_docker', 1, NULL, ${q(now)});`,
  ];
  appGuids.forEach((app, n) => {
    const i = first + n;
    const droplet = randomUUID();
    lines.push(
      `INSERT INTO apps (guid, name, space_guid, state, lifecycle_type, current_droplet_guid) VALUES (${q(app)}, 'app-${i}', ${q(space)}, 'STOPPED', 'docker', ${q(droplet)});`,
      `INSERT INTO processes (guid, app_guid, type, version, instances, memory_in_mb, disk_in_mb, health_check_type) VALUES (${q(app)}, ${q(app)}, 'web', ${q(randomUUID())}, ${PER_APP}, 64, 64, 'port');`,
      `INSERT INTO droplets (guid, app_guid, state, image, manifest_digest, execution_metadata, process_types, image_spec) VALUES (${q(droplet)}, ${q(app)}, 'STAGED', ${q(IMAGE.ref)}, ${q(IMAGE.manifest_digest)}, '{}', '{"web":"/bin/httpd -f"}', ${q(JSON.stringify(IMAGE))});`,
    );
  });
  return lines.join("\n");
}

/** Protocol errors the fake cells saw (they retry); summarized after the figures. */
const errors: string[] = [];

/** A cell that "runs" whatever its desired set says, reporting each change at once. */
class FakeCell {
  readonly running = new Map<string, InstanceReport>();
  /** `process_guid/index` of each running instance: SUSPECT or EVACUATING copies make an index run twice. */
  readonly indexOf = new Map<string, string>();
  /**
   * When the last heartbeat the control plane accepted was sent (performance.now()):
   * the control plane stamps it between sending and answering, so this is a lower bound.
   */
  lastBeatAt = 0;
  /** Round trips of accepted heartbeats (ms), and the longest gap between two accepted ones while not silenced. */
  readonly beatRtts: number[] = [];
  longestGap = 0;
  private version: number | null = null;
  private stopped = false;
  private readonly abort = new AbortController();
  private nextPort = 61000;

  constructor(readonly client: ControlPlaneClient) {}

  private watch: { stop(): void } | null = null;

  start(): void {
    // As the agent does: the set's version comes on a WebSocket; long-polls only while it is down.
    this.watch = this.client.watchDesired();
    void this.pollLoop();
    void this.beatLoop();
  }

  silence(): void {
    this.stopped = true;
    this.watch?.stop();
    this.abort.abort();
  }

  private async pollLoop(): Promise<void> {
    while (!this.stopped) {
      try {
        const set = await this.client.desired(this.version, this.abort.signal);
        if (!set) continue;
        this.version = set.version;
        const wanted = new Set(set.instances.map((i) => i.instance_guid));
        const changes: InstanceReport[] = [];
        for (const spec of set.instances) {
          if (this.running.has(spec.instance_guid)) continue;
          const r: InstanceReport = { instance_guid: spec.instance_guid, state: "RUNNING", since: Date.now(), host_port: this.nextPort++, crash_count: 0, exit: null, reason: null, usage: null };
          this.running.set(spec.instance_guid, r);
          this.indexOf.set(spec.instance_guid, `${spec.process_guid}/${spec.index}`);
          changes.push(r);
        }
        for (const [guid, r] of this.running) {
          if (wanted.has(guid)) continue;
          this.running.delete(guid);
          this.indexOf.delete(guid);
          changes.push({ ...r, state: "STOPPED", since: Date.now(), host_port: null });
        }
        for (let i = 0; i < changes.length; i += 500) await this.client.reportInstances(changes.slice(i, i + 500), this.abort.signal);
      } catch (e) {
        if (this.stopped) return;
        errors.push(`cell ${this.client.cellGuid}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** As the agent beats: start to start, a failed beat sent again sooner. */
  private async beatLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const sent = performance.now();
      try {
        await this.client.heartbeat({
          capacity: { memory_mb: 8192, disk_mb: 16384, containers: 250 }, free: { memory_mb: 8192, disk_mb: 16384, containers: 250 },
          cached_layers: [], instances: [...this.running.values()],
        }, this.abort.signal);
        this.beatRtts.push(performance.now() - sent);
        if (this.lastBeatAt > 0) this.longestGap = Math.max(this.longestGap, sent - this.lastBeatAt);
        this.lastBeatAt = sent;
        failures = 0;
      } catch (e) {
        if (this.stopped) return;
        failures += 1;
        errors.push(`heartbeat ${this.client.cellGuid}: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, nextHeartbeatDelay(sent, performance.now(), BEAT_MS, failures)));
    }
  }
}

/**
 * Requests wrangler dev's proxy failed, counted and reported with the figures.
 * Its ProxyWorker words every failed non-GET forward as "Your worker restarted
 * mid-request" (it compares the request's URL, path included, with the bare
 * Worker URL, so they never match): under this load these are connections
 * between the proxy and workerd failing, not reloads; production has no such hop.
 */
let restarts = 0;

async function admin(cp: ControlPlane, method: string, path: string, body?: unknown): Promise<unknown> {
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${cp.url}${path}`, {
        method, headers: { authorization: `Bearer ${cp.adminToken}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      text = await res.text();
    } catch (e) {
      // The proxy dropped the connection, before or during the answer (it does under this load): counted with its 503s and sent again.
      if (attempt >= 5) throw e;
      restarts++;
      continue;
    }
    // Every admin call here is idempotent (start, flag set), so a failed one is simply sent again.
    if (res.status === 503 && text.includes("restarted") && attempt < 5) {
      restarts++;
      continue;
    }
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

async function until(what: string, check: () => boolean, progress: () => string, timeoutMs = 600_000): Promise<number> {
  const started = performance.now();
  let said = started;
  while (!check()) {
    const now = performance.now();
    if (now - started > timeoutMs) throw new Error(`timed out waiting for ${what} (${progress()})`);
    if (now - said > 10_000) {
      console.log(`  … ${((now - started) / 1000).toFixed(0)} s waiting for ${what}: ${progress()}`);
      said = now;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - started;
}

/**
 * Bundles the Worker once and writes a config that runs the bundle: wrangler dev
 * on the source tree reloads whenever anyone edits a file, cutting requests.
 */
async function frozenConfig(dir: string, wrangler: string, env: NodeJS.ProcessEnv): Promise<string> {
  const out = join(dir, "bundle");
  await run(wrangler, ["deploy", "--dry-run", "--outdir", out], { cwd: ROOT, env, maxBuffer: 16 << 20 });
  const toml = (await readFile(join(ROOT, "wrangler.toml"), "utf8"))
    .replace(/^main = .*$/m, `main = ${JSON.stringify(join(out, "index.js"))}\nno_bundle = true`)
    .replace(/^migrations_dir = .*$/m, `migrations_dir = ${JSON.stringify(join(ROOT, "migrations"))}`);
  const path = join(dir, "wrangler.toml");
  await writeFile(path, toml);
  return path;
}

async function main(): Promise<void> {
  const persistDir = await mkdtemp(join(tmpdir(), "berth-conv-"));
  const wrangler = join(ROOT, "node_modules/.bin/wrangler");
  // Apart from persistDir: wrangler dev watches the bundle's folder, and D1 writes there would reload it.
  const bundleDir = await mkdtemp(join(tmpdir(), "berth-conv-bundle-"));
  // A private dev registry: other wrangler dev sessions on this machine coming and
  // going would otherwise be announced to ours (and reload it).
  // Its own folder: the registry rewrites its files, and wrangler watches the config's folder.
  const registryDir = await mkdtemp(join(tmpdir(), "berth-conv-registry-"));
  process.env.WRANGLER_REGISTRY_PATH = registryDir;
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" };
  const config = await frozenConfig(bundleDir, wrangler, env);
  await run(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir, "--config", config], { cwd: ROOT, env });
  const apps = Array.from({ length: APPS }, () => randomUUID());
  // In slices: wrangler d1 execute fails an internal assertion on large files.
  const space = randomUUID();
  for (let i = 0; i < apps.length; i += 40) {
    const seed = join(persistDir, `seed-${i}.sql`);
    await writeFile(seed, seedSql(space, apps.slice(i, i + 40), i));
    await run(wrangler, ["d1", "execute", "DB", "--local", "--persist-to", persistDir, "--config", config, "--file", seed], { cwd: ROOT, env, maxBuffer: 64 << 20 });
  }

  // The Worker's own log (a line per scheduler pass among it), for post-mortems of a run.
  const log = join(tmpdir(), `berth-conv-${process.pid}.log`);
  const logLines: string[] = [];
  const cp = await startControlPlane({
    persistDir, config, vars: { LONG_POLL_HOLD_MS: "20000", HEARTBEAT_TTL_MS: String(TTL_MS) }, log: (chunk) => logLines.push(chunk),
  });
  const cells: FakeCell[] = [];
  try {
    await inParallel(Array.from({ length: CELLS }, (_, i) => i), 10, async (i) => {
      const { token } = (await admin(cp, "POST", "/v3/cells/enrollment_tokens", { kind: "cell" })) as { token: string };
      const reg = await register(cp.url, {
        enrollment_token: token, name: `fake-${i}`, zone: `z${i % 3}`, address: `10.200.${i >> 8}.${i & 255}`,
        capacity: { memory_mb: 8192, disk_mb: 16384, containers: 250 },
      });
      cells.push(new FakeCell(new ControlPlaneClient(cp.url, reg.guid, reg.credential)));
    });
    cells.forEach((c) => c.start());
    const runningTotal = (among = cells) => among.reduce((n, c) => n + c.running.size, 0);
    /** Desired indices with at least one running instance: convergence, whatever copies still run. */
    const indicesRunning = (among = cells) => new Set(among.flatMap((c) => [...c.indexOf.values()])).size;
    const progress = () => `${indicesRunning()} of ${TOTAL} indices running (${runningTotal()} instances on cells), ${errors.length} cell-side errors so far`;
    console.log(`convergence-sim: ${CELLS} fake cells, ${APPS} apps × ${PER_APP} = ${TOTAL} instances, heartbeat ${BEAT_MS} ms, TTL ${TTL_MS} ms`);

    const t0 = performance.now();
    const startTimes: number[] = [];
    await inParallel(apps, 25, async (app) => {
      const sent = performance.now();
      await admin(cp, "POST", `/v3/apps/${app}/actions/start`);
      startTimes.push(performance.now() - sent);
    });
    const startsSent = performance.now() - t0;
    const a = startsSent + (await until("all RUNNING", () => indicesRunning() === TOTAL, progress));
    console.log(`A. start every app → all ${TOTAL} RUNNING: ${(a / 1000).toFixed(2)} s (start requests took ${(startsSent / 1000).toFixed(2)} s; one start request p50 ${percentile(startTimes, 50).toFixed(0)} ms, p99 ${percentile(startTimes, 99).toFixed(0)} ms)`);

    const t1 = performance.now();
    await admin(cp, "PATCH", "/v3/feature_flags/diego_docker", { enabled: false });
    const b = await until("all stopped", () => runningTotal() === 0, progress);
    console.log(`B. diego_docker off → all stopped on their cells: ${(b / 1000).toFixed(2)} s (flag request ${((performance.now() - t1 - b) / 1000).toFixed(2)} s)`);

    await admin(cp, "PATCH", "/v3/feature_flags/diego_docker", { enabled: true });
    const c = await until("all RUNNING again", () => indicesRunning() === TOTAL, progress);
    console.log(`C. diego_docker on → all RUNNING again: ${(c / 1000).toFixed(2)} s`);

    const victim = cells.reduce((x, y) => (y.running.size > x.running.size ? y : x));
    const lostCount = victim.running.size;
    victim.silence();
    const silencedAt = performance.now();
    const survivors = cells.filter((x) => x !== victim);
    const d = await until("lost cell's instances replaced", () => indicesRunning(survivors) === TOTAL, () => `${indicesRunning(survivors)} indices running on the other cells`);
    // The cell counts as gone TTL after its last accepted heartbeat, which came up to one beat before the silence.
    const afterExpiry = silencedAt + d - (victim.lastBeatAt + TTL_MS);
    console.log(`D. one cell silenced (${lostCount} instances) → all RUNNING elsewhere: ${(d / 1000).toFixed(2)} s after the silence; ${(afterExpiry / 1000).toFixed(2)} s after its presence expired (TTL ${(TTL_MS / 1000).toFixed(1)} s from its last heartbeat)`);

    // Every replacement is recorded: outside D there should be none (no claim timed out, no cell flapped).
    const count = async (types: string) =>
      ((await admin(cp, "GET", `/v3/audit_events?types=${types}&per_page=1`)) as { pagination: { total_results: number } }).pagination.total_results;
    const replaced = await count("app.instances_replaced");
    const lost = await count("app.instance_lost");
    // Audit events group instances per app and reason: count the instances they name.
    const named = async (types: string) => {
      let n = 0;
      for (let page = 1; ; page++) {
        const res = (await admin(cp, "GET", `/v3/audit_events?types=${types}&per_page=5000&page=${page}`)) as { resources: { data: { instances?: unknown[] } }[]; pagination: { total_pages: number } };
        for (const e of res.resources) n += e.data.instances?.length ?? 0;
        if (page >= res.pagination.total_pages) return n;
      }
    };
    const replacedInstances = (await named("app.instances_replaced")) + (await named("app.instance_lost"));
    console.log(`Replacements recorded: ${replaced} replaced and ${lost} lost events naming ${replacedInstances} instances; D alone accounts for ${lostCount}: live instances wrongly replaced ${replacedInstances - lostCount}`);
    const live = cells.filter((x) => x !== victim);
    const rtts = live.flatMap((x) => x.beatRtts);
    const gap = Math.max(...live.map((x) => x.longestGap));
    console.log(`Heartbeats: ${rtts.length} accepted, round trip p50 ${percentile(rtts, 50).toFixed(0)} ms, p99 ${percentile(rtts, 99).toFixed(0)} ms, max ${Math.max(...rtts).toFixed(0)} ms; longest gap between a live cell's accepted heartbeats ${(gap / 1000).toFixed(2)} s (TTL ${(TTL_MS / 1000).toFixed(1)} s)`);

    const kinds = new Map<string, number>();
    for (const e of errors) {
      const k = e.replace(/^\S+ [0-9a-f-]+: /, "");
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    console.log(`Admin requests wrangler dev's proxy failed, retried: ${restarts}; cell-side errors (retried): ${errors.length}`);
    for (const [k, n] of kinds) console.log(`  ${n} × ${k.slice(0, 140)}`);
    console.log("Peer (Diego, documented): flag off → stopped 'on the order of a minute' (30 s sync + 30 s convergence);");
    console.log(`  Berth/Diego for B: ${(b / 60_000).toFixed(3)}×.  Lost cell: Diego 15 s TTL + re-auction; Berth re-placed them ${(afterExpiry / 1000).toFixed(2)} s after the TTL (Diego: the next convergence, ≤ 30 s, or at once on CellDisappeared).`);
  } finally {
    await writeFile(log, logLines.join(""));
    console.log(`Worker log: ${log}`);
    cells.forEach((c) => c.silence());
    await cp.stop();
    await rm(persistDir, { recursive: true, force: true });
    await rm(bundleDir, { recursive: true, force: true });
    await rm(registryDir, { recursive: true, force: true });
  }
}

await main();
