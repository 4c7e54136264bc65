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
 *   B. diego_docker turned off → every instance stopped on its cell (from
 *      the moment the admin sends the flip, its own request included);
 *   C. diego_docker back on → all RUNNING again (likewise);
 *   D. one cell silenced → its instances RUNNING elsewhere.
 * And what a big fleet must not suffer: the p99 of a start request (requests
 * only wake the scheduler), heartbeat round trips, the longest gap between a
 * live cell's accepted heartbeats (over the TTL, the cell would count as lost
 * though it kept sending), and live instances wrongly replaced; then E, a
 * steady fleet (heartbeats only): the workerd CPU a heartbeat costs.
 * Peer: Diego's documented figures — flag off stops apps "within a few
 * convergence cycles, on the order of a minute" (30 s diego_sync + 30 s BBS
 * convergence), a cell is gone after its 15 s presence TTL and its LRPs are
 * re-auctioned on the next convergence (CellDisappeared triggers one at once).
 *
 * Apps are seeded straight into D1 (with STAGED droplets) before the Worker
 * starts: staging is not what this measures.
 *
 * `--via workerd` (the default) serves the bundled Worker on workerd directly
 * (wrangler's own Miniflare, wrangler's config); `--via wrangler` through
 * `wrangler dev`, whose proxy Worker runs in a second workerd process in front;
 * `--via both` runs the same scenario each way and prints the ratios, so the
 * proxy's share is measured. Each phase prints the CPU each program spent
 * (the fake cells share the machine's cores with the control plane) and the
 * scheduler passes it took, from the Worker's one log line per pass.
 *
 * `--profile off` runs the Worker without PROFILE: no per-route and per-pass
 * D1 figures, and none of their cost (about 13% of workerd's CPU at 250 cells).
 * `--inspect-port N` (workerd only) opens workerd's V8 inspector there, for a
 * CPU profile of the Worker and its Durable Objects taken while the sim runs.
 *
 * Run: npx tsx bench/convergence-sim.ts [--cells 100] [--apps 200] [--instances 10] [--ttl-ms 15000] [--beat-ms 5000] [--bulk-sync-ms 30000] [--steady-ms 10000] [--via workerd|wrangler|both] [--profile on|off] [--inspect-port N]
 * (the sizes: --cells 100 --apps 200, --cells 250 --apps 500, --cells 500 --apps 1000)
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { randomUUID } from "node:crypto";
import { nextHeartbeatDelay } from "../agent/cell/backoff";
import { ControlPlaneClient, register } from "../agent/cell/control-plane";
import { DEFAULT_BULK_SYNC_MS, TakenList } from "../agent/cell/heartbeat-list";
import type { InstanceReport } from "../shared/protocol/instance";
import type { ResolvedImage } from "../shared/protocol/image";
import { controlPlaneSecrets, startControlPlane } from "../test/support/control-plane";
import { startWorkerdControlPlane } from "../test/support/workerd-control-plane";
import { arg, choice, optionalArg } from "./args";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");

const CELLS = arg("cells", 100);
const APPS = arg("apps", 200);
const PER_APP = arg("instances", 10);
const TTL_MS = arg("ttl-ms", 15_000);
/** How long phase E watches a fleet with nothing to do (heartbeats only): what a steady cell costs the control plane. */
const STEADY_MS = arg("steady-ms", 10_000);
const BEAT_MS = arg("beat-ms", 5000);
/** The longest a fake cell's heartbeat goes without listing its instances, as the agent's (agent/cell/heartbeat-list.ts). */
const BULK_SYNC_MS = arg("bulk-sync-ms", DEFAULT_BULK_SYNC_MS);
const TOTAL = APPS * PER_APP;
const VIA = choice("via", ["workerd", "wrangler", "both"], "workerd");
const PROFILE = choice("profile", ["on", "off"], "on");
/** workerd's V8 inspector port, to take CPU profiles of the Worker while the sim runs. */
const INSPECT_PORT = optionalArg("inspect-port");

const D = (c: string) => `sha256:${c.repeat(64)}`;
const IMAGE: ResolvedImage = {
  ref: "registry.bench:5000/web:1", manifest_digest: D("a"),
  layers: [{ digest: D("b"), size: 1_000_000, media_type: "application/vnd.oci.image.layer.v1.tar+gzip", diff_id: D("c") }],
  config: { env: ["PATH=/bin"], entrypoint: ["/bin/httpd"], cmd: ["-f"], user: "", workdir: "", exposed_ports: [{ port: 8080, protocol: "tcp" }] },
};

const q = (s: string | null) => (s === null ? "NULL" : `'${s.replaceAll("'", "''")}'`);

/** SQL statements seeding one space (in an organization without quota limits), the flag on, and APPS stopped apps with a current STAGED droplet. */
function seedSql(space: string, appGuids: string[], first: number): string[] {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const lines = first > 0 ? [] : [
    `INSERT OR IGNORE INTO spaces (guid, name, organization_guid) SELECT ${q(space)}, 'bench', guid FROM organizations WHERE name = 'default';`,
    `INSERT OR IGNORE INTO feature_flags (name, enabled, custom_error_message, updated_at) VALUES ('diego_docker', 1, NULL, ${q(now)});`,
    // An organization quota without limits: the default one (10 GiB) would refuse a big fleet's starts.
    `INSERT OR IGNORE INTO quotas (guid, scope, name, organization_guid, created_at, updated_at) VALUES ('bench-unlimited', 'organization', 'bench-unlimited', '', ${q(now)}, ${q(now)});`,
    "UPDATE organizations SET quota_guid = 'bench-unlimited' WHERE name = 'default';",
  ];
  appGuids.forEach((app, n) => {
    const i = first + n;
    const droplet = randomUUID();
    lines.push(
      `INSERT OR IGNORE INTO apps (guid, name, space_guid, state, lifecycle_type, current_droplet_guid) VALUES (${q(app)}, 'app-${i}', ${q(space)}, 'STOPPED', 'docker', ${q(droplet)});`,
      `INSERT OR IGNORE INTO processes (guid, app_guid, type, version, instances, memory_in_mb, disk_in_mb, health_check_type) VALUES (${q(app)}, ${q(app)}, 'web', ${q(randomUUID())}, ${PER_APP}, 64, 64, 'port');`,
      `INSERT OR IGNORE INTO droplets (guid, app_guid, state, image, manifest_digest, execution_metadata, process_types, image_spec) VALUES (${q(droplet)}, ${q(app)}, 'STAGED', ${q(IMAGE.ref)}, ${q(IMAGE.manifest_digest)}, '{}', '{"web":"/bin/httpd -f"}', ${q(JSON.stringify(IMAGE))});`,
    );
  });
  return lines;
}

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

  /** `errors`: where protocol errors the cell saw (it retries) are noted, summarized after the figures. */
  constructor(readonly client: ControlPlaneClient, private readonly errors: string[]) {}

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
        for (let i = 0; i < changes.length; i += 500) {
          const part = changes.slice(i, i + 500);
          const answered = this.taken.sending();
          await this.client.reportInstances(part, this.abort.signal).then(() => answered(part), (e: unknown) => {
            answered(null);
            throw e;
          });
        }
      } catch (e) {
        if (this.stopped) return;
        this.errors.push(`cell ${this.client.cellGuid}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private readonly taken = new TakenList();

  /** As the agent beats: start to start, a failed beat sent again sooner, the instances listed when the control plane has not taken them or the bulk sync is due. */
  private async beatLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const sent = performance.now();
      try {
        const mark = this.taken.mark();
        const reports = [...this.running.values()];
        const listing = this.taken.due(reports, sent, BULK_SYNC_MS);
        const listNext = await this.client.heartbeat({
          capacity: { memory_mb: 8192, disk_mb: 16384, containers: 250 }, free: { memory_mb: 8192, disk_mb: 16384, containers: 250 },
          // Each listed instance with its usage, as the agent sends it (cpu moves every time).
          cached_layers: [], ...(listing ? { instances: reports.map((r) => ({ ...r, usage: { cpu: Math.random() / 10, mem: 48 << 20, disk: 12 << 20 } })) } : {}),
        }, this.abort.signal);
        if (listing) this.taken.listed(reports, sent, mark);
        if (listNext) this.taken.forget();
        this.beatRtts.push(performance.now() - sent);
        if (this.lastBeatAt > 0) this.longestGap = Math.max(this.longestGap, sent - this.lastBeatAt);
        this.lastBeatAt = sent;
        failures = 0;
      } catch (e) {
        if (this.stopped) return;
        failures += 1;
        this.errors.push(`heartbeat ${this.client.cellGuid}: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, nextHeartbeatDelay(sent, performance.now(), BEAT_MS, failures)));
    }
  }
}

/** One run against one way of serving the Worker: what went wrong along the way. */
interface RunState {
  /** Protocol errors the fake cells saw (they retry). */
  errors: string[];
  /**
   * Admin requests wrangler dev's proxy failed, counted and reported with the
   * figures. Its ProxyWorker words every failed non-GET forward as "Your worker
   * restarted mid-request" (it compares the request's URL, path included, with
   * the bare Worker URL, so they never match): under this load these are
   * connections between the proxy and workerd failing, not reloads; production
   * has no such hop.
   */
  restarts: number;
}

async function admin(cp: { url: string; adminToken: string }, st: RunState, method: string, path: string, body?: unknown): Promise<unknown> {
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
      st.restarts++;
      continue;
    }
    // Every admin call here is idempotent (start, flag set), so a failed one is simply sent again.
    if (res.status === 503 && text.includes("restarted") && attempt < 5) {
      st.restarts++;
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

/** CPU seconds so far: this process (the fake cells and the admin client) and each program among its descendants (workerd, wrangler's node). */
async function cpuNow(): Promise<Map<string, number>> {
  const u = process.cpuUsage();
  const out = new Map<string, number>([["bench (fake cells)", (u.user + u.system) / 1e6]]);
  const procs: { pid: number; ppid: number; comm: string; ticks: number }[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const f = stat.slice(close + 2).split(" ");
      procs.push({ pid: Number(name), comm: stat.slice(stat.indexOf("(") + 1, close), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // gone meanwhile
    }
  }
  const mine = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) if (!mine.has(p.pid) && mine.has(p.ppid)) { mine.add(p.pid); grew = true; }
  }
  for (const p of procs) {
    if (p.pid === process.pid || !mine.has(p.pid)) continue;
    const key = p.comm === "node" || p.comm === "MainThread" ? "wrangler (node)" : p.comm;
    out.set(key, (out.get(key) ?? 0) + p.ticks / 100);
  }
  return out;
}

const cpuSpent = (before: Map<string, number>, after: Map<string, number>) =>
  [...after].map(([k, v]) => `${k} ${(v - (before.get(k) ?? 0)).toFixed(1)} s`).join(", ");

/** The Worker's log lines (JSON lines among them: one per scheduler pass), each with when it arrived. */
class LogTap {
  readonly lines: { at: number; text: string }[] = [];
  private partial = "";
  take = (chunk: string): void => {
    const parts = (this.partial + chunk).split("\n");
    this.partial = parts.pop()!;
    const at = performance.now();
    for (const text of parts) this.lines.push({ at, text });
  };
  /** JSON lines with `component` = `component`, arrived within [from, to). */
  records(component: string, from: number, to: number): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.lines) {
      if (l.at < from || l.at >= to || !l.text.includes(`"component":"${component}"`)) continue;
      try {
        out.push(JSON.parse(l.text.slice(l.text.indexOf("{"))));
      } catch {
        // a line that only looks like one
      }
    }
    return out;
  }
}

/** Where a phase's control-plane time went: the scheduler passes in it (their wall time; CPU is in the figures beside). */
function passSummary(tap: LogTap, from: number, to: number): string {
  const passes = tap.records("scheduler", from, to) as { full: boolean; ms: number; read: { instances: number }; d1?: { statements: number } }[];
  if (passes.length === 0) return "no passes";
  const incr = passes.filter((p) => !p.full);
  const full = passes.filter((p) => p.full);
  const sum = passes.reduce((n, p) => n + p.ms, 0);
  const ms = (xs: typeof passes, p: number) => percentile(xs.map((x) => x.ms), p).toFixed(0);
  const d1 = passes.reduce((n, p) => n + (p.d1?.statements ?? 0), 0);
  return `${passes.length} passes, ${(sum / 1000).toFixed(1)} s in passes (${d1} D1 statements): ${incr.length} incremental (p50 ${ms(incr, 50)} ms, max ${ms(incr, 100)} ms, p50 ${percentile(incr.map((x) => x.read.instances), 50)} instances read), ${full.length} full (p50 ${ms(full, 50)} ms, max ${ms(full, 100)} ms)`;
}

/** The Worker's own view of the requests in a phase (PROFILE lines): per route, how many, their time inside the Worker, their D1 use. */
function requestSummary(tap: LogTap, from: number, to: number): string[] {
  const byRoute = new Map<string, { ms: number; d1: { roundTrips: number; statements: number; ms: number } }[]>();
  for (const r of tap.records("http", from, to) as { route: string; ms: number; d1: { roundTrips: number; statements: number; ms: number } }[]) {
    const route = r.route.replace(/\/v3\/cells\/[^/]+/, "/v3/cells/:cell");
    byRoute.set(route, [...(byRoute.get(route) ?? []), r]);
  }
  return [...byRoute].sort((x, y) => y[1].length - x[1].length).slice(0, 6).map(([route, rs]) => {
    const mean = (f: (r: (typeof rs)[number]) => number) => (rs.reduce((n, r) => n + f(r), 0) / rs.length).toFixed(1);
    return `${route}: ${rs.length} in the Worker p50 ${percentile(rs.map((r) => r.ms), 50)} ms, p99 ${percentile(rs.map((r) => r.ms), 99)} ms; D1 per request ${mean((r) => r.d1.roundTrips)} round trips, ${mean((r) => r.d1.statements)} statements, ${mean((r) => r.d1.ms)} ms waiting`;
  });
}

/** Migrations through wrangler (the path a deployment takes), then the apps seeded through the Worker's D1 binding on workerd. */
async function prepareDatabase(config: string, wrangler: string, env: NodeJS.ProcessEnv, space: string, apps: string[]): Promise<string> {
  const persistDir = await mkdtemp(join(tmpdir(), "berth-conv-"));
  await run(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir, "--config", config], { cwd: ROOT, env });
  const cp = await startWorkerdControlPlane({ config, persistDir, vars: controlPlaneSecrets() as unknown as Record<string, string> });
  try {
    const d1 = await cp.d1();
    const statements = seedSql(space, apps, 0);
    // Small batches, each sent again if the binding's connection drops (it did under load at 500 statements);
    // every statement is idempotent (INSERT OR IGNORE, UPDATE), so a batch that had committed changes nothing.
    for (let i = 0; i < statements.length; i += 100) {
      const batch = () => d1.batch(statements.slice(i, i + 100).map((s) => d1.prepare(s)));
      await batch().catch(() => batch()).catch(() => batch());
    }
  } finally {
    await cp.stop();
  }
  return persistDir;
}

type Via = "workerd" | "wrangler";

interface Figures {
  a: number; startP50: number; startP99: number; b: number; c: number; d: number; afterExpiry: number;
  wronglyReplaced: number; beatP99: number; gap: number; errors: number; restarts: number;
}

async function runOnce(via: Via, config: string, wrangler: string, env: NodeJS.ProcessEnv, space: string, apps: string[]): Promise<Figures> {
  const persistDir = await prepareDatabase(config, wrangler, env, space, apps);
  // The Worker's own log (a line per scheduler pass among it), for post-mortems of a run.
  const log = join(tmpdir(), `berth-conv-${process.pid}-${via}.log`);
  const tap = new LogTap();
  const secrets = controlPlaneSecrets();
  const vars = {
    ADMIN_TOKEN: secrets.adminToken, ENCRYPTION_KEY: secrets.encryptionKey, ADMIN_PASSWORD: secrets.adminPassword, TOKEN_SIGNING_KEY: secrets.tokenSigningKey,
    LONG_POLL_HOLD_MS: "20000", HEARTBEAT_TTL_MS: String(TTL_MS), PROFILE: PROFILE === "on" ? "1" : "0",
  };
  const server = via === "workerd"
    ? await startWorkerdControlPlane({ config, persistDir, vars, log: tap.take, inspectorPort: INSPECT_PORT })
    : await startControlPlane({ persistDir, config, ...secrets, vars, log: tap.take, logLevel: "log" });
  // Ctrl-C or a kill stops the control plane too (Miniflare's workerd would outlive this process).
  const onSignal = () => void server.stop().finally(() => process.exit(130));
  process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
  const cp = { url: server.url, adminToken: secrets.adminToken };
  const st: RunState = { errors: [], restarts: 0 };
  const cells: FakeCell[] = [];
  try {
    await inParallel(Array.from({ length: CELLS }, (_, i) => i), 10, async (i) => {
      const { token } = (await admin(cp, st, "POST", "/v3/cells/enrollment_tokens", { kind: "cell" })) as { token: string };
      const reg = await register(cp.url, {
        enrollment_token: token, name: `fake-${i}`, zone: `z${i % 3}`, address: `10.200.${i >> 8}.${i & 255}`,
        capacity: { memory_mb: 8192, disk_mb: 16384, containers: 250 },
      });
      // Beating at once, as an agent does: a cell registered early must not pass its TTL while the others register.
      const cell = new FakeCell(new ControlPlaneClient(cp.url, reg.guid, reg.credential), st.errors);
      cells.push(cell);
      cell.start();
    });
    const runningTotal = (among = cells) => among.reduce((n, c) => n + c.running.size, 0);
    /** Desired indices with at least one running instance: convergence, whatever copies still run. */
    const indicesRunning = (among = cells) => new Set(among.flatMap((c) => [...c.indexOf.values()])).size;
    const progress = () => `${indicesRunning()} of ${TOTAL} indices running (${runningTotal()} instances on cells), ${st.errors.length} cell-side errors so far`;
    console.log(`convergence-sim via ${via === "workerd" ? "workerd directly (wrangler's Miniflare, no proxy)" : "wrangler dev (its proxy in front of workerd)"}: ${CELLS} fake cells, ${APPS} apps × ${PER_APP} = ${TOTAL} instances, heartbeat ${BEAT_MS} ms, TTL ${TTL_MS} ms; load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
    /** What each phase cost: CPU per program, the passes in it, the machine's load at its end. */
    const phase = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
      const cpu0 = await cpuNow();
      const t = performance.now();
      const out = await body();
      const t1 = performance.now();
      console.log(`   ${name}: CPU ${cpuSpent(cpu0, await cpuNow())}; ${passSummary(tap, t, t1)}; load ${loadavg()[0]!.toFixed(1)}`);
      for (const line of requestSummary(tap, t, t1)) console.log(`     ${line}`);
      return out;
    };

    const startTimes: number[] = [];
    const { a, startsSent } = await phase("A", async () => {
      const t0 = performance.now();
      await inParallel(apps, 25, async (app) => {
        const sent = performance.now();
        await admin(cp, st, "POST", `/v3/apps/${app}/actions/start`);
        startTimes.push(performance.now() - sent);
      });
      const startsSent = performance.now() - t0;
      const a = startsSent + (await until("all RUNNING", () => indicesRunning() === TOTAL, progress));
      console.log(`A. start every app → all ${TOTAL} RUNNING: ${(a / 1000).toFixed(2)} s (start requests took ${(startsSent / 1000).toFixed(2)} s; one start request p50 ${percentile(startTimes, 50).toFixed(0)} ms, p99 ${percentile(startTimes, 99).toFixed(0)} ms)`);
      return { a, startsSent };
    });
    void startsSent;

    // B and C count from the moment the admin sends the flip, as A counts from the first start: a flip answered late is part of it.
    const b = await phase("B", async () => {
      const sent = performance.now();
      await admin(cp, st, "PATCH", "/v3/feature_flags/diego_docker", { enabled: false });
      const answered = performance.now() - sent;
      const b = answered + (await until("all stopped", () => runningTotal() === 0, progress));
      console.log(`B. diego_docker off → all stopped on their cells: ${(b / 1000).toFixed(2)} s from the flip (the flag request took ${(answered / 1000).toFixed(2)} s of it)`);
      return b;
    });

    const c = await phase("C", async () => {
      const sent = performance.now();
      await admin(cp, st, "PATCH", "/v3/feature_flags/diego_docker", { enabled: true });
      const answered = performance.now() - sent;
      const c = answered + (await until("all RUNNING again", () => indicesRunning() === TOTAL, progress));
      console.log(`C. diego_docker on → all RUNNING again: ${(c / 1000).toFixed(2)} s from the flip (the flag request took ${(answered / 1000).toFixed(2)} s of it)`);
      return c;
    });

    const victim = cells.reduce((x, y) => (y.running.size > x.running.size ? y : x));
    const lostCount = victim.running.size;
    const { d, afterExpiry } = await phase("D", async () => {
      victim.silence();
      const silencedAt = performance.now();
      const survivors = cells.filter((x) => x !== victim);
      const d = await until("lost cell's instances replaced", () => indicesRunning(survivors) === TOTAL, () => `${indicesRunning(survivors)} indices running on the other cells`);
      // The cell counts as gone TTL after its last accepted heartbeat, which came up to one beat before the silence.
      const afterExpiry = silencedAt + d - (victim.lastBeatAt + TTL_MS);
      console.log(`D. one cell silenced (${lostCount} instances) → all RUNNING elsewhere: ${(d / 1000).toFixed(2)} s after the silence; ${(afterExpiry / 1000).toFixed(2)} s after its presence expired (TTL ${(TTL_MS / 1000).toFixed(1)} s from its last heartbeat)`);
      return { d, afterExpiry };
    });

    // A fleet with nothing to do: everything workerd spends is the heartbeats' (and the alarms'), the share of its one thread a fleet's presence takes.
    await phase("E", async () => {
      const beats = () => cells.reduce((n, x) => n + x.beatRtts.length, 0);
      const [cpu0, n0] = [await cpuNow(), beats()];
      await new Promise((r) => setTimeout(r, STEADY_MS));
      const [spent, n] = [(await cpuNow()).get("workerd")! - cpu0.get("workerd")!, beats() - n0];
      if (n === 0) throw new Error("no heartbeat was accepted in phase E");
      console.log(`E. a steady fleet for ${(STEADY_MS / 1000).toFixed(0)} s: ${n} heartbeats (${(n / (STEADY_MS / 1000)).toFixed(0)}/s), workerd CPU ${spent.toFixed(2)} s: ${((spent * 1000) / n).toFixed(2)} ms a heartbeat, ${((100 * spent) / (STEADY_MS / 1000)).toFixed(0)}% of its thread`);
    });

    // Every replacement is recorded: outside D there should be none (no claim timed out, no cell flapped).
    const count = async (types: string) =>
      ((await admin(cp, st, "GET", `/v3/audit_events?types=${types}&per_page=1`)) as { pagination: { total_results: number } }).pagination.total_results;
    const replaced = await count("app.instances_replaced");
    const lost = await count("app.instance_lost");
    // Audit events group instances per app and reason: count the instances they name.
    const named = async (types: string) => {
      let n = 0;
      for (let page = 1; ; page++) {
        const res = (await admin(cp, st, "GET", `/v3/audit_events?types=${types}&per_page=5000&page=${page}`)) as { resources: { data: { instances?: unknown[] } }[]; pagination: { total_pages: number } };
        for (const e of res.resources) n += e.data.instances?.length ?? 0;
        if (page >= res.pagination.total_pages) return n;
      }
    };
    const replacedInstances = (await named("app.instances_replaced")) + (await named("app.instance_lost"));
    const wronglyReplaced = replacedInstances - lostCount;
    console.log(`Replacements recorded: ${replaced} replaced and ${lost} lost events naming ${replacedInstances} instances; D alone accounts for ${lostCount}: live instances wrongly replaced ${wronglyReplaced}`);
    const live = cells.filter((x) => x !== victim);
    const rtts = live.flatMap((x) => x.beatRtts);
    const gap = Math.max(...live.map((x) => x.longestGap));
    console.log(`Heartbeats: ${rtts.length} accepted, round trip p50 ${percentile(rtts, 50).toFixed(0)} ms, p99 ${percentile(rtts, 99).toFixed(0)} ms, max ${Math.max(...rtts).toFixed(0)} ms; longest gap between a live cell's accepted heartbeats ${(gap / 1000).toFixed(2)} s (TTL ${(TTL_MS / 1000).toFixed(1)} s)`);

    const kinds = new Map<string, number>();
    for (const e of st.errors) {
      const k = e.replace(/^\S+ [0-9a-f-]+: /, "");
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    console.log(`Admin requests the server dropped, retried: ${st.restarts}; cell-side errors (retried): ${st.errors.length}`);
    for (const [k, n] of kinds) console.log(`  ${n} × ${k.slice(0, 140)}`);
    console.log("Peer (Diego, documented): flag off → stopped 'on the order of a minute' (30 s sync + 30 s convergence);");
    console.log(`  Berth/Diego for B: ${(b / 60_000).toFixed(3)}×.  Lost cell: Diego 15 s TTL + re-auction; Berth re-placed them ${(afterExpiry / 1000).toFixed(2)} s after the TTL (Diego: the next convergence, ≤ 30 s, or at once on CellDisappeared).`);
    return {
      a, startP50: percentile(startTimes, 50), startP99: percentile(startTimes, 99), b, c, d, afterExpiry, wronglyReplaced,
      beatP99: percentile(rtts, 99), gap, errors: st.errors.length, restarts: st.restarts,
    };
  } finally {
    await writeFile(log, tap.lines.map((l) => l.text).join("\n"));
    console.log(`Worker log: ${log}`);
    cells.forEach((c) => c.silence());
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
    await server.stop();
    await rm(persistDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const wrangler = join(ROOT, "node_modules/.bin/wrangler");
  // Apart from the D1: wrangler dev watches the bundle's folder, and D1 writes there would reload it.
  const bundleDir = await mkdtemp(join(tmpdir(), "berth-conv-bundle-"));
  // A private dev registry: other wrangler dev sessions on this machine coming and
  // going would otherwise be announced to ours (and reload it).
  // Its own folder: the registry rewrites its files, and wrangler watches the config's folder.
  const registryDir = await mkdtemp(join(tmpdir(), "berth-conv-registry-"));
  process.env.WRANGLER_REGISTRY_PATH = registryDir;
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" };
  try {
    const config = await frozenConfig(bundleDir, wrangler, env);
    const apps = Array.from({ length: APPS }, () => randomUUID());
    const space = randomUUID();
    const vias: Via[] = VIA === "both" ? ["workerd", "wrangler"] : [VIA];
    const figures = new Map<Via, Figures>();
    for (const via of vias) figures.set(via, await runOnce(via, config, wrangler, env, space, apps));
    if (figures.size === 2) {
      const w = figures.get("workerd")!;
      const p = figures.get("wrangler")!;
      const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
      const rows: [string, (f: Figures) => number, (v: number) => string][] = [
        ["start → all RUNNING", (f) => f.a, s], ["start request p99", (f) => f.startP99, (v) => `${v.toFixed(0)} ms`],
        ["flag off → all stopped", (f) => f.b, s], ["flag on → all RUNNING", (f) => f.c, s], ["cell silenced → replaced", (f) => f.d, s],
        ["wrongly replaced", (f) => f.wronglyReplaced, String], ["heartbeat p99", (f) => f.beatP99, (v) => `${v.toFixed(0)} ms`],
      ];
      console.log(`Behind the proxy vs through it (${CELLS} × ${TOTAL}): workerd directly | wrangler dev | wrangler dev / workerd`);
      for (const [name, get, fmt] of rows) console.log(`  ${name}: ${fmt(get(w))} | ${fmt(get(p))} | ${(get(p) / get(w)).toFixed(2)}×`);
    }
  } finally {
    await rm(bundleDir, { recursive: true, force: true });
    await rm(registryDir, { recursive: true, force: true });
  }
}

await main();
