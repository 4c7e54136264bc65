/**
 * A cell asks for its desired set with `specs=new`: instances it took come as
 * references. One whose state was lost (a wiped state dir) meets a reference
 * to an instance it neither runs nor remembers: it reads the set again with
 * every spec, and runs the instance from that. A control plane that predates
 * references refuses the parameter: the agent asks as before from then on.
 * Against a real HTTP server standing in for the control plane, with real
 * processes for containers.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { CellAgent } from "../../agent/cell/agent";
import { ControlPlaneClient } from "../../agent/cell/control-plane";
import { defaultRunnerConfig } from "../../agent/supervisor/runner";
import type { DesiredInstance } from "../../shared/protocol/desired-set";
import { freePort } from "../support/control-plane";
import { ProcessDriver } from "../support/process-driver";
import { makeSpec } from "../support/specs";

describe("desired sets with references", () => {
  const asked: string[] = [];
  /** A control plane from before references: it refuses `specs` as an unknown parameter, as CC-style validation does. */
  let old = false;
  let spec: ReturnType<typeof makeSpec>;
  const set = (instances: DesiredInstance[]) => ({
    protocol: 1, version: 7, instances, staging_tasks: [],
    registry_access: { version: 0, trusted_ca_certificates: [], insecure_registries: [], cell_only_registries: [] },
  });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    const url = new URL(req.url!, "http://cp");
    const json = (body: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (url.pathname.endsWith("/desired")) {
      asked.push(url.search);
      const specs = url.searchParams.get("specs");
      if (old && specs !== null) {
        return void res.writeHead(422, { "content-type": "application/json" })
          .end(JSON.stringify({ errors: [{ code: 10008, title: "CF-UnprocessableEntity", detail: 'Unrecognized key: "specs"' }] }));
      }
      if (url.searchParams.has("after")) return void setTimeout(() => res.writeHead(204).end(), 50); // unchanged
      return json(set(specs === "new" ? [{ instance_guid: spec.instance_guid, process_guid: spec.process_guid, index: 0, taken: true }] : [spec]));
    }
    json({ protocol: 1, skipped: [] }); // heartbeats and reports
  });
  const dirs: string[] = [];
  const agents: CellAgent[] = [];

  const stopAgents = async () => {
    for (const agent of agents.splice(0)) {
      await agent.stopAll();
      await agent.shutdown();
    }
  };

  afterAll(async () => {
    await stopAgents();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  /** A fresh agent (no state) against the stand-in; resolves once it runs the instance and has asked three times. */
  async function agentRunning(): Promise<ProcessDriver> {
    await stopAgents();
    asked.length = 0;
    const port = await freePort();
    spec = makeSpec({ port, command: { kind: "exec", argv: ["/bin/busybox", "httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", "/tmp"] } });
    if (!server.listening) await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const dir = await mkdtemp(join(tmpdir(), "berth-refs-"));
    dirs.push(dir);
    const driver = new ProcessDriver();
    const agent = new CellAgent(
      {
        stateDir: dir, capacity: { memory_mb: 1024, disk_mb: 1024, containers: 4 }, heartbeatIntervalMs: 60_000, bulkSyncIntervalMs: 30_000,
        pollJitterMs: 0, backoff: { baseMs: 50, maxMs: 200 }, runner: { ...defaultRunnerConfig, shutdownDelayMs: 0 },
      },
      {
        client: new ControlPlaneClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, "cell-guid", "credential"),
        driver,
        log: pino({ level: "silent" }),
        cachedLayers: async () => [],
        stage: async () => {
          throw new Error("no staging in this test");
        },
      },
    );
    agents.push(agent);
    await agent.start();
    const deadline = Date.now() + 10_000;
    while ((driver.started.length === 0 || asked.length < 3) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(driver.started).toHaveLength(1);
    expect(driver.started[0]!.hostPort).toBe(port);
    return driver;
  }

  it("a cell handed a reference to an instance it does not know reads the set again with every spec and runs the instance", async () => {
    await agentRunning();
    // References first (what an agent asks for), then the whole set once (the default, unsaid), then the long-poll on the version it applied.
    expect(asked.slice(0, 3)).toEqual(["?specs=new", "", "?specs=new&after=7"]);
  }, 20_000);

  it("against a control plane that refuses specs=new, the agent asks as before from then on", async () => {
    old = true;
    await agentRunning();
    expect(asked.slice(0, 3)).toEqual(["?specs=new", "", "?after=7"]);
  }, 20_000);
});
