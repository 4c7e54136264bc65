/** The router's configuration defaults that depend on the host (agent/router/config.ts). */
import os from "node:os";
import { describe, expect, it } from "vitest";
import { defaultWorkers, parseRouterConfig } from "../../agent/router/config";

const base = { apiUrl: "http://127.0.0.1:8787", token: "t" };

describe("the router's workers", () => {
  it("leave HAProxy one core short of the host, never fewer than one thread; the Node path takes one process per core", () => {
    expect([1, 2, 8].map((cores) => defaultWorkers("haproxy", cores))).toEqual([1, 1, 7]);
    expect([1, 2, 8].map((cores) => defaultWorkers("node", cores))).toEqual([1, 2, 8]);
  });

  it("default by data path and keep what is asked, 0 included", () => {
    const cores = os.availableParallelism();
    expect(parseRouterConfig({ ...base, dataPath: "haproxy" }).workers).toBe(defaultWorkers("haproxy", cores));
    expect(parseRouterConfig({ ...base, dataPath: "node" }).workers).toBe(cores);
    expect(parseRouterConfig({ ...base, dataPath: "node", workers: 0 }).workers).toBe(0);
    expect(() => parseRouterConfig({ ...base, workers: -1 })).toThrow(/invalid router configuration/);
  });
});
