import { existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startProbeDelayMs } from "../../agent/supervisor/health";
import { cellLine, type InstanceEvent } from "../../agent/supervisor/cell-lines";
import { exitReason, transition } from "../../agent/supervisor/lifecycle";
import { InstanceRunner, type RunnerConfig } from "../../agent/supervisor/runner";
import type { InstanceReport } from "../../shared/protocol/instance";
import { freePort } from "../support/control-plane";
import { ProcessDriver } from "../support/process-driver";
import { makeSpec } from "../support/specs";

describe("transition()", () => {
  it.each([
    ["STARTING", { type: "healthy" }, "RUNNING"],
    ["RUNNING", { type: "healthy" }, null],
    ["STARTING", { type: "start_timeout", timeoutS: 60, lastError: "refused" }, "CRASHED"],
    ["RUNNING", { type: "start_timeout", timeoutS: 60, lastError: null }, null],
    ["RUNNING", { type: "unhealthy", reason: "x" }, "CRASHED"],
    ["STARTING", { type: "unhealthy", reason: "x" }, null],
    ["RUNNING", { type: "exited", exit: { status: 1, signal: null, oom: false } }, "CRASHED"],
    ["CRASHED", { type: "exited", exit: { status: 1, signal: null, oom: false } }, null],
    ["CRASHED", { type: "stopped" }, "STOPPED"],
    ["STOPPED", { type: "healthy" }, null],
  ] as const)("%s + %o → %s", (from, event, to) => {
    expect(transition(from, event)?.state ?? null).toBe(to);
  });

  it("words crash reasons for people", () => {
    expect(exitReason({ status: null, signal: "SIGKILL", oom: true })).toMatch(/out of memory/);
    expect(exitReason({ status: null, signal: "SIGSEGV", oom: false })).toBe("process was killed by signal SIGSEGV");
    expect(exitReason({ status: 3, signal: null, oom: false })).toBe("process exited with status 3");
  });
});

const fast: RunnerConfig = { startProbeFirstMs: 2, startProbeIntervalMs: 20, stopGraceMs: 300, shutdownDelayMs: 0, timeScale: 0.25 };
const busybox = "/bin/busybox";

function collect() {
  const reports: InstanceReport[] = [];
  const waitFor = async (state: string, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const r = reports.find((x) => x.state === state);
      if (r) return r;
      await new Promise((res) => setTimeout(res, 10));
    }
    throw new Error(`no ${state} report; got ${reports.map((r) => r.state).join(",")}`);
  };
  return { reports, onChange: (r: InstanceReport) => reports.push(r), waitFor };
}

describe("startProbeDelayMs()", () => {
  it("starts short and doubles up to the longest interval", () => {
    expect(Array.from({ length: 9 }, (_, i) => startProbeDelayMs(i, 2, 100))).toEqual([2, 4, 8, 16, 32, 64, 100, 100, 100]);
    expect(startProbeDelayMs(0, 50, 20)).toBe(20);
  });
});

describe("InstanceRunner with real processes", () => {
  it("is RUNNING once the port check passes and STOPPED after a stop", async () => {
    const port = await freePort();
    const spec = makeSpec({ port, command: { kind: "exec", argv: [busybox, "httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", "/tmp"] } });
    const r = collect();
    const runner = new InstanceRunner(spec, new ProcessDriver(), r.onChange, fast);
    runner.start();
    expect((await r.waitFor("RUNNING")).host_port).toBe(port);
    await runner.stop();
    expect(r.reports.map((x) => x.state)).toEqual(["STARTING", "RUNNING", "STOPPED"]);
  });

  it("a stop lets a RUNNING instance answer through the shutdown delay, then signals it; a STARTING one is signalled at once", async () => {
    const delayed: RunnerConfig = { ...fast, shutdownDelayMs: 600 };
    const port = await freePort();
    const spec = makeSpec({ port, command: { kind: "exec", argv: [busybox, "httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", "/tmp"] } });
    const r = collect();
    const driver = new ProcessDriver();
    const runner = new InstanceRunner(spec, driver, r.onChange, delayed);
    runner.start();
    await r.waitFor("RUNNING");
    const t0 = Date.now();
    const stopped = runner.stop();
    // Routers may still send it requests for a while: it answers them.
    await new Promise((res) => setTimeout(res, 300));
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
    await stopped;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(delayed.shutdownDelayMs - 20);
    expect((await driver.started[0]!.exited).signal).toBe("SIGTERM");

    // Never RUNNING, never routed: no delay.
    const starting = makeSpec({ port: await freePort(), command: { kind: "exec", argv: [busybox, "sleep", "30"] },
      health_check: { type: "port", timeout_s: 30, invocation_timeout_s: 1, interval_s: 30, endpoint: null } });
    const s = collect();
    const other = new ProcessDriver();
    const unready = new InstanceRunner(starting, other, s.onChange, delayed);
    unready.start();
    await s.waitFor("STARTING");
    while (other.started.length === 0) await new Promise((res) => setTimeout(res, 10));
    const t1 = Date.now();
    await unready.stop();
    expect(Date.now() - t1).toBeLessThan(delayed.shutdownDelayMs);
    expect(s.reports.map((x) => x.state)).toEqual(["STARTING", "STOPPED"]);
  });

  it("an app that never opens its port stays STARTING, then CRASHED at the start timeout with the reason", async () => {
    const port = await freePort();
    const spec = makeSpec({ port, command: { kind: "exec", argv: [busybox, "sleep", "30"] },
      health_check: { type: "port", timeout_s: 1, invocation_timeout_s: 1, interval_s: 30, endpoint: null } });
    const r = collect();
    const driver = new ProcessDriver();
    let healthCheckFailures = 0;
    const runner = new InstanceRunner(spec, driver, r.onChange, fast, undefined, { healthCheckFailed: () => healthCheckFailures++ });
    const t0 = Date.now();
    runner.start();
    const crashed = await r.waitFor("CRASHED");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(crashed.reason).toMatch(/^Instance never healthy after 1s: Failed to make TCP connection to port \d+: ECONNREFUSED/);
    expect(r.reports.map((x) => x.state)).toEqual(["STARTING", "CRASHED"]);
    // The metrics hook hears of it once (probes failing before the timeout are not failures yet).
    expect(healthCheckFailures).toBe(1);
    // The crashed container is freed at once.
    await driver.started[0]!.exited;
    await runner.stop();
  });

  it("an http check against a missing endpoint fails", async () => {
    const port = await freePort();
    const spec = makeSpec({ port, command: { kind: "exec", argv: [busybox, "httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", "/tmp"] },
      health_check: { type: "http", timeout_s: 1, invocation_timeout_s: 1, interval_s: 30, endpoint: "/no-such-page" } });
    const r = collect();
    const runner = new InstanceRunner(spec, new ProcessDriver(), r.onChange, fast);
    runner.start();
    expect((await r.waitFor("CRASHED")).reason).toMatch(/'\/no-such-page' on port \d+: received status code 404/);
    await runner.stop();
  });

  it("a process check passes without a port", async () => {
    const spec = makeSpec({ command: { kind: "exec", argv: [busybox, "sleep", "30"] },
      health_check: { type: "process", timeout_s: 1, invocation_timeout_s: 1, interval_s: 30, endpoint: null } });
    const r = collect();
    const runner = new InstanceRunner(spec, new ProcessDriver(), r.onChange, fast);
    runner.start();
    await r.waitFor("RUNNING");
    await runner.stop();
  });

  it("a process that exits is CRASHED with its status", async () => {
    const spec = makeSpec({ command: { kind: "shell", script: "exit 3" },
      health_check: { type: "process", timeout_s: 1, invocation_timeout_s: 1, interval_s: 30, endpoint: null } });
    const r = collect();
    const runner = new InstanceRunner(spec, new ProcessDriver(), r.onChange, fast);
    runner.start();
    const crashed = await r.waitFor("CRASHED");
    expect(crashed.exit).toEqual({ status: 3, signal: null, oom: false });
    expect(crashed.reason).toBe("process exited with status 3");
  });

  it("a RUNNING instance whose port stops answering is CRASHED by the liveness check", async () => {
    const port = await freePort();
    const script = `const s=require("net").createServer(c=>c.end()).listen(${port},"127.0.0.1");setTimeout(()=>s.close(),400);setInterval(()=>{},1000)`;
    const spec = makeSpec({ port, command: { kind: "exec", argv: [process.execPath, "-e", script] },
      health_check: { type: "port", timeout_s: 5, invocation_timeout_s: 1, interval_s: 1, endpoint: null } });
    const r = collect();
    let healthCheckFailures = 0;
    const runner = new InstanceRunner(spec, new ProcessDriver(), r.onChange, fast, undefined, { healthCheckFailed: () => healthCheckFailures++ });
    runner.start();
    await r.waitFor("RUNNING");
    expect((await r.waitFor("CRASHED")).reason).toMatch(/^liveness check failed: Failed to make TCP connection/);
    expect(healthCheckFailures).toBe(1);
  });

  /** A RUNNING instance whose shell ignores SIGTERM, returned once its trap is set (so a stop's SIGTERM meets it). */
  async function runIgnoringTerm(name: string, extra: Partial<Parameters<typeof makeSpec>[0]> = {}) {
    const ready = join(tmpdir(), `berth-${name}-${process.pid}-${Date.now()}`);
    const spec = makeSpec({ ...extra, command: { kind: "shell", script: `trap '' TERM; touch ${ready}; while :; do sleep 0.05; done` },
      health_check: { type: "process", timeout_s: 1, invocation_timeout_s: 1, interval_s: 30, endpoint: null } });
    const r = collect();
    const driver = new ProcessDriver();
    const runner = new InstanceRunner(spec, driver, r.onChange, fast);
    runner.start();
    await r.waitFor("RUNNING");
    while (!existsSync(ready)) await new Promise((res) => setTimeout(res, 10));
    rmSync(ready);
    return { r, driver, runner };
  }

  it("a process that ignores SIGTERM is killed after the grace period", async () => {
    const { r, driver, runner } = await runIgnoringTerm("trap");
    const t0 = Date.now();
    await runner.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(fast.stopGraceMs - 20);
    expect((await driver.started[0]!.exited).signal).toBe("SIGKILL");
    expect(r.reports.at(-1)!.state).toBe("STOPPED");
  });

  it("a stop sends the image's STOPSIGNAL first: the same process that ignores SIGTERM ends on SIGQUIT, with no SIGKILL", async () => {
    const { r, driver, runner } = await runIgnoringTerm("quit", { stop_signal: "SIGQUIT" });
    await runner.stop();
    expect((await driver.started[0]!.exited).signal).toBe("SIGQUIT");
    expect(r.reports.at(-1)!.state).toBe("STOPPED");
  });

  it("a start that fails is CRASHED with the driver's reason", async () => {
    const spec = makeSpec({ command: { kind: "none" } });
    const r = collect();
    const runner = new InstanceRunner(spec, new ProcessDriver(), r.onChange, fast);
    runner.start();
    expect((await r.waitFor("CRASHED")).reason).toBe("No start command found or specified");
  });
});

describe("what the runner tells of an instance (its app's CELL lines), with real processes", () => {
  const told = () => {
    const lines: string[] = [];
    return { lines, hooks: { instanceEvent: (e: InstanceEvent) => lines.push(cellLine("cell-1", "inst-1", e)) } };
  };

  it("a start, health and stop: creating, created, healthy, stopping, destroying", async () => {
    const port = await freePort();
    const spec = makeSpec({ port, command: { kind: "exec", argv: [busybox, "httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", "/tmp"] } });
    const r = collect();
    const t = told();
    const runner = new InstanceRunner(spec, new ProcessDriver(), r.onChange, fast, undefined, t.hooks);
    runner.start();
    await r.waitFor("RUNNING");
    await runner.stop();
    expect(t.lines).toEqual([
      "Cell cell-1 creating container for instance inst-1",
      "Cell cell-1 successfully created container for instance inst-1",
      "Container became healthy",
      "Cell cell-1 stopping instance inst-1",
      "Cell cell-1 destroying container for instance inst-1",
    ]);
  });

  it("a crash: the exit status, then the container destroyed once, even when a stop follows", async () => {
    const spec = makeSpec({ command: { kind: "shell", script: "sleep 0.2; exit 3" },
      health_check: { type: "process", timeout_s: 1, invocation_timeout_s: 1, interval_s: 30, endpoint: null } });
    const r = collect();
    const t = told();
    const runner = new InstanceRunner(spec, new ProcessDriver(), r.onChange, fast, undefined, t.hooks);
    runner.start();
    await r.waitFor("CRASHED");
    await runner.stop();
    expect(t.lines).toEqual([
      "Cell cell-1 creating container for instance inst-1",
      "Cell cell-1 successfully created container for instance inst-1",
      "Container became healthy",
      "Exit status 3",
      "Cell cell-1 destroying container for instance inst-1",
    ]);
  });

  it("a start that fails says why", async () => {
    const r = collect();
    const t = told();
    const runner = new InstanceRunner(makeSpec({ command: { kind: "none" } }), new ProcessDriver(), r.onChange, fast, undefined, t.hooks);
    runner.start();
    await r.waitFor("CRASHED");
    expect(t.lines).toEqual([
      "Cell cell-1 creating container for instance inst-1",
      "Cell cell-1 failed to create container for instance inst-1: No start command found or specified",
    ]);
  });
});
