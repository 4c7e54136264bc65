/**
 * agent/router/main.ts as a daemon: two node:cluster workers fed by the
 * primary's long-poll of a stand-in control plane (HAProxy with two threads
 * on that data path), SIGTERM draining, and the errors a bad command line gets.
 */
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { DATA_PATH, get, getHealth, route, spawnRouterDaemon, startBackend, startFakeControlPlane, until, whoAnswers, type RouterDaemon } from "./support";

const TOKEN = "daemon-test-token";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function startDaemon(args: string[], env: Record<string, string>): RouterDaemon {
  const d = spawnRouterDaemon(args, env);
  cleanups.push(() => d.kill());
  return d;
}

describe("the router daemon", () => {
  it("serves from two workers, keeps them in sync with the table, says so on /health, and drains on SIGTERM", async () => {
    const cp = await startFakeControlPlane({ token: TOKEN, holdMs: 300 });
    cleanups.push(() => cp.stop());
    const a = await startBackend("a");
    const slow = await startBackend("slow", (_req, res) => setTimeout(() => res.end("drained"), 400));
    cleanups.push(() => a.close(), () => slow.close());
    cp.publish([route("a.apps.test", a.port)]);

    const d = startDaemon(["--api-url", cp.url, "--listen", "127.0.0.1", "--port", "0", "--workers", "2", "--poll-jitter-ms", "0", "--health-port", "0"], {
      BERTH_ROUTER_TOKEN: TOKEN,
    });
    // The Node path's primary says when both workers have a table; the HAProxy path, when HAProxy has it.
    const synced = (version: number) =>
      DATA_PATH === "node"
        ? d.lines.some((l) => l.msg === "workers in sync" && l.version === version && l.workers === 2)
        : d.lines.some((l) => l.msg === "route table received" && l.version === version);
    const [servingRole, controlRole] = DATA_PATH === "node" ? ["worker", "primary"] : ["single", "single"];
    await until(() => synced(1) && d.lines.some((l) => l.msg === "listening"), 60_000, () => `daemon up: ${d.stderr()}`);
    const routerPort = d.port()!;
    expect(await whoAnswers(routerPort, "a.apps.test")).toBe("a");
    await until(() => d.port("health listening") !== undefined, 5_000, "health listener");
    expect(await getHealth(d.port("health listening")!)).toEqual({ status: 200, body: "ok\n" });

    cp.publish([route("a.apps.test", a.port), route("slow.apps.test", slow.port)]);
    await until(() => synced(2), 5_000, "both workers on table 2");
    const inFlight = get(routerPort, "slow.apps.test");
    await until(() => slow.requests.length === 1, 5_000, "slow request reached its backend");
    d.child.kill("SIGTERM");
    const reply = await inFlight;
    expect(reply.body).toBe("drained");
    const [code] = (await once(d.child, "exit")) as [number | null];
    expect(code).toBe(0);
    expect(d.lines.filter((l) => l.msg === "request" && l.role === servingRole).map((l) => l.host)).toEqual(["a.apps.test", "slow.apps.test"]);
    expect(d.lines.some((l) => l.msg === "stopped" && l.role === controlRole)).toBe(true);
    // The token stays in the primary: no log line carries it.
    expect(JSON.stringify(d.lines)).not.toContain(TOKEN);
  }, 120_000);

  it("exits 2 naming what is wrong with its configuration", async () => {
    const d = startDaemon(["--port", "99999", "--workers", "0", "--trusted-proxies", "10.0.0.0/8, 10.0.0.0/33"], { BERTH_ROUTER_TOKEN: "", BERTH_API_URL: "" });
    const [code] = (await once(d.child, "exit")) as [number | null];
    expect(code).toBe(2);
    expect(d.stderr()).toContain("apiUrl");
    expect(d.stderr()).toContain("token");
    expect(d.stderr()).toContain("trustedProxies[1]");
    expect(d.stderr()).toContain("listenPort");
  });

  it("rejects a non-numeric flag", async () => {
    const d = startDaemon(["--workers", "many"], {});
    const [code] = (await once(d.child, "exit")) as [number | null];
    expect(code).not.toBe(0);
    expect(d.stderr()).toContain("expected a non-negative integer, got 'many'");
  });
});
