/**
 * @module The router with HAProxy as its data path: the same {@link Router}
 * as the Node proxy, but requests go through an HAProxy process this module
 * starts, configures and drives; Node only decides.
 *
 * - Start: the config (config.ts) is rendered from the settings and the table
 *   so far, HAProxy started in the foreground (`-db`), the runtime socket
 *   awaited.
 * - A table: plan.ts's commands go over the runtime API (servers added and
 *   removed, map entries set) without a reload, in order, one table at a
 *   time. Only a table needing more backends than the pool holds reloads:
 *   a new process takes the listening sockets from the old one over the
 *   runtime socket (`-x`, `expose-fd listeners`) and tells it to finish what
 *   it has in flight and exit (`-sf`), so no connection is refused.
 * - Access lines: HAProxy writes one per request to its stdout, a pipe the
 *   daemon drains on a timer (access-pipe.ts); each becomes an
 *   {@link AccessRecord} logged (access-log.ts), counted (metrics) and shipped
 *   (accessRecorded: the apps' RTR lines) exactly as on the Node path. Lines
 *   HAProxy had to drop (the pipe full) are counted from its DroppedLogs.
 * - Shutdown: SIGUSR1 (HAProxy's soft stop: stop accepting, finish in-flight
 *   requests), then SIGTERM (its fast stop) for what is left at shutdownMs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, rmSync, writeFileSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import type { RouteTable } from "../../../shared/protocol/route-table";
import { logAccess } from "../access-log";
import { sharedRequestMetrics } from "../metrics";
import type { Router, RouterOptions } from "../router";
import { native } from "../../native";
import { parseAccessLine } from "./access-line";
import { accessPipeBytes, drainAccessPipe, type AccessPipe } from "./access-pipe";
import { HOP_BY_HOP_LUA, renderHaproxyConfig, type HaproxyFiles, type HaproxySettings } from "./config";
import { emptyPool, mapFiles, planTable, poolServers, type PoolState, type Retiring, type RouteMaps } from "./plan";
import { runCommands, runtimeApi } from "./runtime-api";
import { makeWorkDir } from "./work-dir";

export interface HaproxyRouterOptions extends RouterOptions {
  /** HAProxy threads (the Node path's worker processes). */
  readonly threads: number;
  /** The haproxy binary; `haproxy` on PATH by default. */
  readonly binary?: string;
  /** Backends made before any route needs them; more come by a reload. */
  readonly initialPool?: number;
  /** How often servers waiting to be deleted are tried again. */
  readonly retireEveryMs?: number;
  /** How often the access-line pipe is drained (default 20 ms). */
  readonly accessReadEveryMs?: number;
  /** The access-line pipe's size: lines written while it is full are dropped (default 1 MiB, the most an unprivileged process may ask unless the host lowered it). */
  readonly accessPipeBytes?: number;
  /** How often HAProxy's count of dropped access lines is read (default 10 s). */
  readonly droppedEveryMs?: number;
}

/** A free port on `host`: taken, read and released (HAProxy cannot report the port it bound for 0). */
async function freePort(host: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once `child` itself answers on the runtime socket (after a reload the old process may hold it for a moment). */
async function socketReady(socketPath: string, child: ChildProcess, stderr: () => string): Promise<void> {
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`haproxy exited at start: ${stderr().trim()}`);
    try {
      const [info] = await runtimeApi(socketPath, ["show info"], 1_000);
      if (new RegExp(`^Pid: ${child.pid}$`, "m").test(info!)) return;
    } catch {
      // not listening yet
    }
    await sleep(20);
  }
}

export function createHaproxyRouter(options: HaproxyRouterOptions): Router {
  const { log, timeouts } = options;
  const metrics = options.metrics ?? sharedRequestMetrics();
  const dir = makeWorkDir(os.tmpdir());
  const files: HaproxyFiles = {
    socket: path.join(dir, "admin.sock"),
    routesMap: path.join(dir, "routes.map"),
    idleMap: path.join(dir, "idle.map"),
    stateMap: path.join(dir, "state.map"),
    lua: path.join(dir, "hop-by-hop.lua"),
    crtList: options.tls === undefined ? undefined : path.join(dir, "certs.list"),
  };
  const configFile = path.join(dir, "haproxy.cfg");
  const maps: RouteMaps = { routes: files.routesMap, idle: files.idleMap };
  let pool: PoolState = emptyPool(options.initialPool ?? 64);
  let pending: RouteTable | null = null;
  let version: number | undefined;
  let loaded = false;
  let settings: HaproxySettings | null = null;
  let current: ChildProcess | null = null;
  const processes = new Set<ChildProcess>();
  let retiring: Retiring[] = [];
  let applying: Promise<void> = Promise.resolve();
  let started: Promise<AddressInfo & { tlsPort?: number }> | null = null;
  let shutdownDone: Promise<void> | null = null;

  const writeState = (s: HaproxySettings, loaded: boolean): void => {
    writeFileSync(configFile, renderHaproxyConfig(s, poolServers(pool)));
    const contents = mapFiles(pool);
    writeFileSync(files.routesMap, contents.routes);
    writeFileSync(files.idleMap, contents.idle);
    writeFileSync(files.stateMap, loaded ? "loaded 1\n" : "");
    writeFileSync(files.lua, HOP_BY_HOP_LUA);
  };

  const onAccessLine = (line: string, receivedAt: number): void => {
    const record = parseAccessLine(line, receivedAt);
    if (record === null) return void (line.trim() !== "" && log.debug({ haproxy: line }, "haproxy"));
    logAccess(log, record);
    metrics.observe(record.status, (record.now - record.startedAt) / 1000);
    options.accessRecorded?.(record);
  };

  /**
   * The access lines of a chunk, each whole line in turn (the pipe hands on
   * whole lines only); the lines of one chunk were read at the same moment.
   */
  const onAccessLines = (chunk: string): void => {
    const receivedAt = performance.now();
    let start = 0;
    for (let end = chunk.indexOf("\n"); end !== -1; end = chunk.indexOf("\n", start)) {
      onAccessLine(chunk.slice(start, end), receivedAt);
      start = end + 1;
    }
  };

  /** Each process's access-line pipe, so shutdown waits for the last lines. */
  const readers = new Map<ChildProcess, AccessPipe>();
  /** Each process's own runtime API session, open from its start: after a soft stop its socket takes no new one. */
  const controls = new Map<ChildProcess, { socket: net.Socket; ready: Promise<unknown> }>();

  /** A prompt-mode session, ready once HAProxy has shown its first prompt; `ask` sends one command and resolves with its answer. */
  const openControl = (child: ChildProcess): void => {
    const socket = net.connect(files.socket, () => socket.write("prompt\n"));
    socket.setEncoding("utf8");
    socket.on("error", () => undefined);
    const ready = new Promise<void>((resolve) => {
      let first = "";
      const onData = (chunk: string): void => {
        first += chunk;
        if (!first.endsWith("> ")) return;
        socket.off("data", onData);
        resolve();
      };
      socket.on("data", onData);
      socket.once("close", () => resolve());
    });
    controls.set(child, { socket, ready });
    socket.once("close", () => controls.delete(child));
  };
  const ask = async (child: ChildProcess, command: string): Promise<string> => {
    await controls.get(child)?.ready;
    return new Promise((resolve, reject) => {
      const control = controls.get(child)?.socket;
      if (control === undefined || control.destroyed) return reject(new Error("no runtime API session"));
      let out = "";
      const onData = (chunk: string): void => {
        out += chunk;
        const end = out.lastIndexOf("\n> ");
        if (end === -1 || !out.endsWith("\n> ")) return;
        control.off("data", onData);
        resolve(out.slice(0, end));
      };
      control.on("data", onData);
      control.write(`${command}\n`);
    });
  };

  /**
   * After `child`'s soft stop (SIGUSR1, or -sf from the process replacing it):
   * HAProxy waits for every session, the daemon's own too, so that one ends
   * once no request is left in it.
   */
  const releaseWhenIdle = async (child: ChildProcess): Promise<void> => {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      let sessions: string;
      try {
        sessions = await ask(child, "show sess");
      } catch {
        break;
      }
      if (!sessions.split("\n").some((l) => l.includes(" fe=router "))) break;
      await sleep(50);
    }
    controls.get(child)?.socket.destroy();
  };

  /** Starts an HAProxy process; with `previous`, it takes over that one's listeners and lets it drain. */
  const startProcess = async (previous: ChildProcess | null): Promise<ChildProcess> => {
    const args = ["-db", "-f", configFile];
    if (previous !== null) args.push("-x", files.socket, "-sf", String(previous.pid));
    // setpriv: HAProxy is killed with this process, even by SIGKILL, rather than left holding the ports.
    const pipe = native.fsPipe(accessPipeBytes(options.accessPipeBytes ?? 1024 * 1024));
    const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", options.binary ?? "haproxy", ...args], { stdio: ["ignore", pipe.write, "pipe"] });
    closeSync(pipe.write); // HAProxy holds the only writing end: the pipe ends when it exits
    const reader = drainAccessPipe(pipe.read, pipe.capacity, options.accessReadEveryMs ?? 20, onAccessLines);
    readers.set(child, reader);
    void reader.ended.then(() => readers.delete(child));
    processes.add(child);
    child.once("exit", () => {
      processes.delete(child);
      droppedSeen.delete(child);
      reader.drain();
    });
    // HAProxy's own messages: alerts as warnings, the rest (servers entering and leaving) at debug.
    const recent: string[] = [];
    createInterface({ input: child.stderr! }).on("line", (line) => {
      recent.push(line);
      if (recent.length > 20) recent.shift();
      if (line.includes("[ALERT]")) log.warn({ haproxy: line }, "haproxy");
      else log.debug({ haproxy: line }, "haproxy");
    });
    child.once("error", (err) => log.error({ err }, "haproxy could not be started"));
    await socketReady(files.socket, child, () => recent.join("\n"));
    openControl(child);
    child.once("exit", (code, signal) => {
      if (child === current && shutdownDone === null) log.error({ code, signal, stderr: recent.join("\n") }, "haproxy exited");
    });
    return child;
  };

  const apply = async (table: RouteTable): Promise<void> => {
    const s = settings!;
    const plan = planTable(pool, table, maps);
    pool = plan.next;
    if (plan.reload) {
      writeState(s, true);
      retiring = []; // the new process has none of them
      const previous = current;
      current = await startProcess(previous);
      if (previous !== null) void releaseWhenIdle(previous);
      log.info({ backends: pool.slots.length }, "haproxy reloaded with a bigger backend pool");
    } else {
      // The first table also ends the "no route table yet" answers.
      await runCommands(files.socket, loaded ? plan.commands : [...plan.commands, `add map ${files.stateMap} loaded 1`]);
      retiring.push(...plan.retire);
    }
    version = table.version;
    loaded = true;
  };

  /** DroppedLogs last read from each process (each counts from 0). */
  const droppedSeen = new Map<ChildProcess, number>();
  const droppedTimer = setInterval(() => {
    const child = current;
    if (child === null) return;
    ask(child, "show info").then(
      (info) => {
        const total = Number(/^DroppedLogs: (\d+)$/m.exec(info)?.[1] ?? 0);
        const count = total - (droppedSeen.get(child) ?? 0);
        if (count <= 0) return;
        droppedSeen.set(child, total);
        metrics.linesDropped(count);
        log.warn({ dropped: count, total }, "haproxy dropped access lines: its pipe was full (the daemon read it too late)");
      },
      () => undefined, // the process is going: its successor is asked next time
    );
  }, options.droppedEveryMs ?? 10_000);
  droppedTimer.unref();

  const retireTimer = setInterval(() => {
    if (retiring.length === 0 || current === null) return;
    const batch = retiring;
    retiring = [];
    runtimeApi(files.socket, batch.map((r) => `del server ${r}`)).then(
      // Still in use: kept for the next round. Deleted or gone (a reload): done.
      (answers) => batch.forEach((r, i) => !/^Server deleted|^No such/.test(answers[i]!) && retiring.push(r)),
      () => retiring.push(...batch),
    );
  }, options.retireEveryMs ?? 200);
  retireTimer.unref();

  const start = async (): Promise<AddressInfo & { tlsPort?: number }> => {
    const listenPort = options.listenPort === 0 ? await freePort(options.listenHost) : options.listenPort;
    const tls = options.tls;
    const tlsPort = tls === undefined ? undefined : tls.port === 0 ? await freePort(options.listenHost) : tls.port;
    settings = {
      listenHost: options.listenHost,
      listenPort,
      tls: tls === undefined || tlsPort === undefined ? undefined : { port: tlsPort, strictSni: tls.fallback === undefined },
      trustedProxies: options.trustedProxies,
      maxAttempts: options.maxAttempts,
      maxTunnelsPerRoute: options.maxTunnelsPerRoute,
      threads: options.threads,
      timeouts,
      files,
    };
    if (tls !== undefined && files.crtList !== undefined) {
      // The default certificate first: HAProxy serves the first one when no name matches.
      const ordered = tls.fallback === undefined ? tls.certs : [tls.fallback, ...tls.certs.filter((c) => c !== tls.fallback)];
      writeFileSync(files.crtList, ordered.map((c) => `${path.join(tls.certDir, `${c.name}.crt`)}\n`).join(""));
    }
    const first = pending;
    pending = null;
    if (first !== null) pool = planTable(pool, first, maps).next;
    writeState(settings, first !== null);
    current = await startProcess(null);
    if (first !== null) {
      version = first.version;
      loaded = true;
    }
    const family = net.isIPv6(options.listenHost) ? "IPv6" : "IPv4";
    return { address: options.listenHost, family, port: listenPort, tlsPort };
  };

  return {
    listen() {
      started ??= start();
      return started.then(({ address, family, port }) => ({ address, family, port }));
    },
    async listenTls() {
      if (options.tls === undefined) return undefined;
      started ??= start();
      const { address, family, tlsPort } = await started;
      return { address, family, port: tlsPort! };
    },
    applyTable(table) {
      if (current === null && started === null) {
        pending = table;
        version = table.version;
        return Promise.resolve();
      }
      applying = applying
        .then(() => started)
        .then(() => apply(table))
        .catch((err: unknown) => log.error({ err, version: table.version }, "route table not applied to haproxy"));
      return applying;
    },
    get version() {
      return version;
    },
    async inFlight() {
      if (current === null || current.exitCode !== null || current.signalCode !== null) return 0;
      const [sessions] = await runtimeApi(files.socket, ["show sess"]);
      return sessions!.split("\n").filter((l) => l.includes(" fe=router ")).length;
    },
    shutdown() {
      shutdownDone ??= (async () => {
        clearInterval(retireTimer);
        clearInterval(droppedTimer);
        const live = [...processes].filter((p) => p.exitCode === null && p.signalCode === null);
        // Exited, and its pipe read to the end, so every access line is logged.
        const ended = (p: ChildProcess): Promise<unknown> => Promise.all([once(p, "close"), readers.get(p)?.ended]);
        const exited = Promise.all(live.map(ended));
        // At the deadline, HAProxy's fast stop (SIGTERM) cuts what is left; its own hard-stop-after is the backstop.
        const deadline = setTimeout(() => {
          log.warn("shutdown deadline reached; cutting what is left");
          for (const p of live) p.kill("SIGTERM");
        }, timeouts.shutdownMs);
        for (const p of live) {
          p.kill("SIGUSR1");
          void releaseWhenIdle(p);
        }
        await exited;
        clearTimeout(deadline);
        rmSync(dir, { recursive: true, force: true });
      })();
      return shutdownDone;
    },
  };
}
