/**
 * @module Health probes as CF runs them: `port` (a TCP connection to the app's
 * port is accepted), `http` (GET endpoint answers 200 within the invocation
 * timeout), `process` (nothing to probe: alive is healthy).
 * Each probe returns null when healthy, else a reason a person can read.
 */
import { connect } from "node:net";
import { request } from "node:http";
import type { HealthCheck } from "../../shared/protocol/instance";

export type Probe = () => Promise<string | null>;

/**
 * The wait after failed start probe number `attempt` (0-based): short at first,
 * since most apps listen within milliseconds of starting, doubling up to `maxMs`
 * so a slow starter is not probed in a busy loop.
 */
export function startProbeDelayMs(attempt: number, firstMs: number, maxMs: number): number {
  return Math.min(maxMs, firstMs * 2 ** attempt);
}

export function tcpProbe(host: string, port: number, timeoutMs: number): Probe {
  return () =>
    new Promise((resolve) => {
      const socket = connect({ host, port });
      const done = (result: string | null) => {
        socket.destroy();
        resolve(result);
      };
      socket.setTimeout(timeoutMs, () => done(`Failed to make TCP connection to port ${port}: timed out after ${timeoutMs}ms`));
      socket.once("connect", () => done(null));
      socket.once("error", (e: NodeJS.ErrnoException) => done(`Failed to make TCP connection to port ${port}: ${e.code ?? e.message}`));
    });
}

export function httpProbe(host: string, port: number, endpoint: string, timeoutMs: number): Probe {
  return () =>
    new Promise((resolve) => {
      const req = request({ host, port, path: endpoint, method: "GET", timeout: timeoutMs, agent: false }, (res) => {
        res.resume();
        const ok = res.statusCode === 200;
        resolve(ok ? null : `Failed to make HTTP request to '${endpoint}' on port ${port}: received status code ${res.statusCode}`);
      });
      req.once("timeout", () => {
        req.destroy();
        resolve(`Failed to make HTTP request to '${endpoint}' on port ${port}: timed out after ${timeoutMs}ms`);
      });
      req.once("error", (e: NodeJS.ErrnoException) => resolve(`Failed to make HTTP request to '${endpoint}' on port ${port}: ${e.code ?? e.message}`));
      req.end();
    });
}

/** The probe for a spec's health check against the address the cell reaches the app on. */
export function probeFor(check: HealthCheck, host: string, port: number): Probe | null {
  const timeoutMs = check.invocation_timeout_s * 1000;
  switch (check.type) {
    case "process":
      return null;
    case "port":
      return tcpProbe(host, port, timeoutMs);
    case "http":
      return httpProbe(host, port, check.endpoint ?? "/", timeoutMs);
  }
}
