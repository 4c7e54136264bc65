/**
 * /health for load balancers: 503 until the first route table, 200 while
 * routing, 503 from SIGTERM on while the router keeps serving for its drain
 * wait, then gone.
 */
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { healthAnswer } from "../../agent/router/health";
import { getHealth, route, spawnRouterDaemon, startBackend, startFakeControlPlane, until, whoAnswers } from "./support";

const TOKEN = "health-test-token";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("healthAnswer", () => {
  it("is 200 only with a table and not draining", () => {
    expect(healthAnswer({ hasTable: true, draining: false })).toEqual({ status: 200, body: "ok\n" });
    expect(healthAnswer({ hasTable: false, draining: false })).toEqual({ status: 503, body: "no route table yet\n" });
    expect(healthAnswer({ hasTable: true, draining: true })).toEqual({ status: 503, body: "draining\n" });
  });
});

describe("GET /health on the router daemon", () => {
  it("says 503 before the first route table, 200 once it routes, and 503 while draining", async () => {
    const cp = await startFakeControlPlane({ token: TOKEN, holdMs: 300 });
    cleanups.push(() => cp.stop());
    const a = await startBackend("a");
    cleanups.push(() => a.close());
    cp.publish([route("a.apps.test", a.port)]);
    // The control plane fails at first: the router has no table.
    cp.misbehave({ status: 500, body: "{}" });

    const d = spawnRouterDaemon(
      ["--api-url", cp.url, "--listen", "127.0.0.1", "--port", "0", "--health-port", "0", "--workers", "0", "--poll-jitter-ms", "0", "--backoff-base-ms", "50", "--backoff-max-ms", "100", "--drain-wait-ms", "3000"],
      { BERTH_ROUTER_TOKEN: TOKEN },
    );
    cleanups.push(() => d.kill());
    await until(() => d.port("health listening") !== undefined && d.port() !== undefined, 60_000, () => `daemon up: ${d.stderr()}`);
    const health = d.port("health listening")!;
    expect(await getHealth(health)).toEqual({ status: 503, body: "no route table yet\n" });

    cp.misbehave(null);
    await until(() => d.lines.some((l) => l.msg === "route table received"), 10_000, "first table");
    expect(await getHealth(health)).toEqual({ status: 200, body: "ok\n" });
    expect(await whoAnswers(d.port()!, "a.apps.test")).toBe("a");

    d.child.kill("SIGTERM");
    await until(() => d.lines.some((l) => l.msg === "shutting down: draining"), 5_000, "drain begun");
    // Out of rotation at once, yet still serving through the drain wait.
    expect(await getHealth(health)).toEqual({ status: 503, body: "draining\n" });
    expect(await whoAnswers(d.port()!, "a.apps.test")).toBe("a");
    const [code] = (await once(d.child, "exit")) as [number | null];
    expect(code).toBe(0);
  }, 120_000);
});
