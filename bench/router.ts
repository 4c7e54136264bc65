/**
 * Router bench: the same keep-alive load (autocannon, loopback, bounded
 * duration) through each of these, in one run:
 *   - direct to the backend (a small Node HTTP server in its own process),
 *   - nginx from Debian as a reverse proxy to that backend (worker_processes
 *     auto, upstream keepalive, temp dir for pid/logs): the peer,
 *   - HAProxy from Debian (2.6, as many threads as Berth's, Host looked up in a map)
 *     configured by hand, the floor of Berth's data path,
 *   - Berth's router daemon on its HAProxy data path (agent/router/main.ts,
 *     HAProxy with its default threads (one per core but one), configured and driven by the daemon,
 *     which drains HAProxy's access lines from a pipe and parses every one), fed its route table by a stand-in
 *     control plane: CPU counts HAProxy's and the daemon's,
 *   - the same daemon on its Node data path (--data-path node, one worker per core),
 *   - a bare node:http proxy (keep-alive agent, pipe, one process per core
 *     with node:cluster, no routing, no logging): the floor of any Node proxy.
 * Prints requests/s, p50, p99 and CPU per request for each, and Berth/nginx
 * ratios against the targets: ≥ 1.0× nginx's throughput, p99 ≤ 1.5× nginx's,
 * CPU per request ≤ 1.5× nginx's.
 *
 * Every proxy writes an access log line per request to a file: buffered by
 * nginx (`buffer=4k`) and the Node path (3 KB pino buffer); HAProxy writes
 * each line to stdout as it goes (to a file for the hand-made one, to the
 * daemon, which logs it as JSON, on Berth's).
 *
 * Run: npx tsx bench/router.ts [--duration 8] [--connections 50] [--rounds 1] [--workers N (every proxy's)]
 *      [--targets nginx,haproxy,berth] (a subset, for a quicker look; the ratios need nginx and berth)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { request } from "undici";
import { LOOPBACK, refusedPort, route, startFakeControlPlane, until } from "../test/router/support";
import { defaultWorkers } from "../agent/router/config";
import { arg, optionalArg } from "./args";

const DURATION = arg("duration", 8);
const CONNECTIONS = arg("connections", 50);
const ROUNDS = arg("rounds", 1);
const CORES = os.availableParallelism();
/** `--workers N` for every proxy; else each side's own default: the router's for HAProxy's threads (the hand-made one's too), one per core for Node. */
const WORKERS_ASKED = optionalArg("workers");
const HAPROXY_THREADS = WORKERS_ASKED ?? defaultWorkers("haproxy", CORES);
const NODE_WORKERS = WORKERS_ASKED ?? defaultWorkers("node", CORES);
const ALL_TARGETS = ["direct", "nginx", "haproxy", "berth", "berth-node", "bare"] as const;
const TARGETS = targetList();

/** `--targets a,b`: which of ALL_TARGETS to run; all of them by default. */
function targetList(): ReadonlySet<string> {
  const i = process.argv.indexOf("--targets");
  if (i < 0) return new Set(ALL_TARGETS);
  const names = (process.argv[i + 1] ?? "").split(",");
  const unknown = names.filter((n) => !(ALL_TARGETS as readonly string[]).includes(n));
  if (unknown.length > 0 || names.length === 0) throw new Error(`--targets takes a comma-separated subset of ${ALL_TARGETS.join(",")}; not ${unknown.join(",")}`);
  return new Set(names);
}
const HOST = "bench.apps.test";
const TOKEN = "bench-router-token";
const MAIN = path.resolve(import.meta.dirname, "../agent/router/main.ts");

const BACKEND_SCRIPT = `
const http = require("node:http");
const body = Buffer.from("hello from the backend\\n");
const server = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
  res.end(body);
});
server.keepAliveTimeout = 65000;
server.listen(0, "127.0.0.1", () => process.stdout.write(server.address().port + "\\n"));
`;

interface Target {
  readonly name: string;
  readonly port: number;
  /** The process whose CPU time is counted: the proxy's, or the backend's for "direct". */
  readonly pid: number | undefined;
}

const children: ChildProcess[] = [];
function track(child: ChildProcess): ChildProcess {
  children.push(child);
  return child;
}

async function startBackend(): Promise<Target> {
  const child = track(spawn(process.execPath, ["-e", BACKEND_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] }));
  const [chunk] = (await once(child.stdout!, "data")) as [Buffer];
  return { name: "direct", port: Number(chunk.toString().trim()), pid: child.pid };
}

const BARE_PROXY_SCRIPT = `
const cluster = require("node:cluster");
const http = require("node:http");
const [port, workers] = process.argv.slice(1).map(Number);
if (cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let i = 0; i < workers; i++) cluster.fork();
  let up = 0;
  cluster.on("listening", (_w, address) => { if (++up === workers) process.stdout.write(address.port + "\\n"); });
  process.on("SIGTERM", () => { for (const w of Object.values(cluster.workers)) w.kill(); process.exit(0); });
} else {
  const agent = new http.Agent({ keepAlive: true, noDelay: true });
  http.createServer((req, res) => {
    const up = http.request({ host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers, agent }, (upRes) => {
      res.writeHead(upRes.statusCode, upRes.headers);
      upRes.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  }).listen(0, "127.0.0.1");
}
`;

async function startBareProxy(backendPort: number): Promise<Target> {
  const child = track(spawn(process.execPath, ["-e", BARE_PROXY_SCRIPT, String(backendPort), String(NODE_WORKERS)], { stdio: ["ignore", "pipe", "inherit"] }));
  const [chunk] = (await once(child.stdout!, "data")) as [Buffer];
  const port = Number(chunk.toString().trim());
  await waitForOk(`http://${LOOPBACK}:${port}/`, () => child.exitCode !== null);
  return { name: "bare", port, pid: child.pid };
}

function nginxConf(dir: string, listenPort: number, backendPort: number): string {
  return `worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${dir}/access.log combined buffer=4k;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${listenPort};
    server_name ${HOST};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-Id $request_id;
    }
  }
}
`;
}

async function startNginx(dir: string, backendPort: number): Promise<Target> {
  const listenPort = await refusedPort();
  const conf = path.join(dir, "nginx.conf");
  writeFileSync(conf, nginxConf(dir, listenPort, backendPort));
  const child = track(spawn("nginx", ["-c", conf, "-p", dir, "-g", "daemon off;"], { stdio: ["ignore", "inherit", "inherit"] }));
  await waitForOk(`http://${LOOPBACK}:${listenPort}/`, () => child.exitCode !== null);
  return { name: "nginx", port: listenPort, pid: child.pid };
}

function haproxyConf(dir: string, listenPort: number, backendPort: number): string {
  writeFileSync(path.join(dir, "hosts.map"), `${HOST} app\n`);
  return `global
  nbthread ${HAPROXY_THREADS}
  maxconn 4096
  log stdout format raw daemon
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 5s
  http-reuse safe
frontend fe
  bind ${LOOPBACK}:${listenPort}
  option forwardfor
  http-request set-header X-Forwarded-Proto http
  unique-id-format %[uuid()]
  http-request set-header X-Request-Id %[unique-id] unless { req.hdr(x-request-id) -m found }
  use_backend %[req.hdr(host),lower,field(1,:),map(${dir}/hosts.map)]
backend app
  server app1 ${LOOPBACK}:${backendPort}
`;
}

async function startHaproxy(dir: string, backendPort: number): Promise<Target> {
  const listenPort = await refusedPort();
  const conf = path.join(dir, "haproxy.cfg");
  writeFileSync(conf, haproxyConf(dir, listenPort, backendPort));
  const out = openSync(path.join(dir, "haproxy.log"), "w");
  const child = track(spawn("haproxy", ["-db", "-f", conf], { stdio: ["ignore", out, "inherit"] }));
  await waitForOk(`http://${LOOPBACK}:${listenPort}/`, () => child.exitCode !== null);
  return { name: "haproxy", port: listenPort, pid: child.pid };
}

async function startBerth(dir: string, apiUrl: string, dataPath: "haproxy" | "node"): Promise<Target> {
  const name = dataPath === "haproxy" ? "berth" : "berth-node";
  const logFile = path.join(dir, `${name}.log`);
  const out = openSync(logFile, "w");
  const child = track(
    spawn(
      process.execPath,
      ["--import", "tsx", MAIN, "--data-path", dataPath, "--api-url", apiUrl, "--listen", LOOPBACK, "--port", "0", "--workers", String(dataPath === "haproxy" ? HAPROXY_THREADS : NODE_WORKERS)],
      { env: { ...process.env, BERTH_ROUTER_TOKEN: TOKEN }, stdio: ["ignore", out, "inherit"] },
    ),
  );
  // The Node path's primary says when its workers have the table; the HAProxy path, when HAProxy has it.
  const syncedMsg = dataPath === "haproxy" ? "route table received" : "workers in sync";
  let port = 0;
  let synced = false;
  await until(
    () => {
      if (child.exitCode !== null) throw new Error(`router exited with ${child.exitCode}`);
      for (const line of readFileSync(logFile, "utf8").split("\n")) {
        if (line.length === 0) continue;
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === "listening") port = entry.port!;
        if (entry.msg === syncedMsg) synced = true;
      }
      return port !== 0 && synced;
    },
    90_000,
    `the Berth router (${dataPath}) listening with its table`,
  );
  await waitForOk(`http://${LOOPBACK}:${port}/`, () => child.exitCode !== null);
  return { name, port, pid: child.pid };
}

async function waitForOk(url: string, died: () => boolean): Promise<void> {
  let last: unknown = "no answer";
  for (let i = 0; i < 200; i++) {
    if (died()) throw new Error(`${url}: server exited`);
    try {
      const res = await request(url, { headers: { host: HOST } });
      const text = await res.body.text();
      if (res.statusCode === 200 && text.startsWith("hello")) return;
      last = `HTTP ${res.statusCode}: ${text}`;
    } catch (err) {
      last = err; // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never answered 200`, { cause: last });
}

interface Figure {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly bad: number;
  /** CPU time per request of the proxy's processes (of the backend's for "direct"). */
  readonly cpuUs: number;
  /** Of cpuUs, the root process's own share (Berth's daemon beside its HAProxy; nginx's master). */
  readonly ownCpuUs: number;
}

const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux

/** utime + stime of a process and all its children (nginx workers, cluster workers), and of the root alone, in ms. */
function cpuMs(rootPid: number): { total: number; own: number } {
  let total = 0;
  let own = Number.NaN;
  const pids = [rootPid];
  while (pids.length > 0) {
    const pid = pids.pop()!;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // exited meanwhile
      throw err;
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
    if (pid === rootPid) own = ms;
    total += ms;
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    if (children.length > 0) pids.push(...children.split(" ").map(Number));
  }
  return { total, own };
}

/**
 * The proxy's CPU once it is idle again: work the load left behind (access lines still in a pipe
 * or a buffer) is the load's too, and reading the counters at once would leave it out.
 */
async function cpuMsWhenIdle(pid: number): Promise<{ total: number; own: number }> {
  let last = cpuMs(pid);
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = cpuMs(pid);
    if (now.total - last.total <= 20) return now;
    last = now;
  }
  throw new Error(`the proxy (pid ${pid}) was still busy 10 s after the load`);
}

async function load(port: number, duration: number, proxyPid: number | undefined): Promise<Figure> {
  const before = proxyPid === undefined ? undefined : cpuMs(proxyPid);
  const result = await autocannon({ url: `http://${LOOPBACK}:${port}/`, connections: CONNECTIONS, duration, headers: { host: HOST } });
  const after = proxyPid === undefined ? undefined : await cpuMsWhenIdle(proxyPid);
  const perRequest = (ms: number) => (ms * 1000) / (result.requests.average * duration);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    bad: result.non2xx + result.errors,
    cpuUs: before && after ? perRequest(after.total - before.total) : Number.NaN,
    ownCpuUs: before && after ? perRequest(after.own - before.own) : Number.NaN,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "berth-bench-router-"));
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(path.join(dir, sub));
  const cp = await startFakeControlPlane({ token: TOKEN, holdMs: 30_000 });
  try {
    const backend = await startBackend();
    cp.publish([route(HOST, backend.port)]);
    const starts: Record<(typeof ALL_TARGETS)[number], () => Promise<Target>> = {
      direct: async () => backend,
      nginx: () => startNginx(dir, backend.port),
      haproxy: () => startHaproxy(dir, backend.port),
      berth: () => startBerth(dir, cp.url, "haproxy"),
      "berth-node": () => startBerth(dir, cp.url, "node"),
      bare: () => startBareProxy(backend.port),
    };
    const targets: Target[] = [];
    for (const name of ALL_TARGETS) if (TARGETS.has(name)) targets.push(await starts[name]());
    console.log(`load: autocannon, ${CONNECTIONS} keep-alive connections, ${DURATION} s per run, ${ROUNDS} round(s); ${CORES} cores; HAProxy threads: ${HAPROXY_THREADS}, Node workers: ${NODE_WORKERS}; nginx: worker_processes auto`);
    for (const t of targets) await load(t.port, 2, t.pid); // warm-up: JIT, pools, nginx upstream keepalive
    const figures = new Map<string, Figure[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of targets) figures.get(t.name)!.push(await load(t.port, DURATION, t.pid));
    }
    const summary = new Map<string, Figure>();
    for (const [name, runs] of figures) {
      summary.set(name, {
        rps: median(runs.map((f) => f.rps)),
        p50: median(runs.map((f) => f.p50)),
        p99: median(runs.map((f) => f.p99)),
        bad: runs.reduce((n, f) => n + f.bad, 0),
        cpuUs: median(runs.map((f) => f.cpuUs)),
        ownCpuUs: median(runs.map((f) => f.ownCpuUs)),
      });
    }
    console.log(`\n${"target".padEnd(10)} ${"req/s".padStart(10)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"non-2xx+errors".padStart(15)} ${"CPU µs/req".padStart(11)}`);
    for (const [name, f] of summary) {
      const cpu = f.cpuUs.toFixed(0);
      console.log(`${name.padEnd(10)} ${f.rps.toFixed(0).padStart(10)} ${f.p50.toFixed(2).padStart(8)} ${f.p99.toFixed(2).padStart(8)} ${String(f.bad).padStart(15)} ${cpu.padStart(11)}`);
    }
    const berth = summary.get("berth");
    const nginx = summary.get("nginx");
    const haproxy = summary.get("haproxy");
    const berthNode = summary.get("berth-node");
    const bare = summary.get("bare");
    const target = (what: string, ratio: number, goal: string, met: boolean) => console.log(`${what.padEnd(32)} ${ratio.toFixed(2)}× (target ${goal}) ${met ? "met" : "NOT met"}`);
    console.log("");
    if (berth && nginx) {
      target("Berth (HAProxy)/nginx req/s:", berth.rps / nginx.rps, "≥ 1.0×", berth.rps >= nginx.rps);
      target("Berth (HAProxy)/nginx p99:", berth.p99 / nginx.p99, "≤ 1.5×", berth.p99 <= 1.5 * nginx.p99);
      target("Berth (HAProxy)/nginx CPU/req:", berth.cpuUs / nginx.cpuUs, "≤ 1.5×", berth.cpuUs <= 1.5 * nginx.cpuUs);
    }
    // Where load, backend and proxy share the cores, req/s follows the CPU each request costs: bare HAProxy is the most Berth can reach.
    if (haproxy && nginx) console.log(`the floor, hand-made HAProxy/nginx: req/s ${(haproxy.rps / nginx.rps).toFixed(2)}×, CPU per request ${(haproxy.cpuUs / nginx.cpuUs).toFixed(2)}× (no access-line reader, no RTR lines)`);
    if (berth && haproxy) console.log(`Berth (HAProxy)/hand-made HAProxy: req/s ${(berth.rps / haproxy.rps).toFixed(2)}×, CPU per request ${(berth.cpuUs / haproxy.cpuUs).toFixed(2)}×`);
    if (berth) console.log(`Berth (HAProxy) CPU per request: HAProxy ${(berth.cpuUs - berth.ownCpuUs).toFixed(0)} µs, the daemon (access lines) ${berth.ownCpuUs.toFixed(0)} µs`);
    if (berthNode && nginx) console.log(`Berth (Node)/nginx: req/s ${(berthNode.rps / nginx.rps).toFixed(2)}×, p99 ${(berthNode.p99 / nginx.p99).toFixed(2)}×, CPU per request ${(berthNode.cpuUs / nginx.cpuUs).toFixed(2)}×`);
    if (berthNode && bare) console.log(`Berth (Node)/bare Node proxy: req/s ${(berthNode.rps / bare.rps).toFixed(2)}×, CPU per request ${(berthNode.cpuUs / bare.cpuUs).toFixed(2)}×`);
    console.log(`machine load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} on ${os.availableParallelism()} cores`);
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, "exit") : undefined)));
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
