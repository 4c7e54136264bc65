/**
 * A cell's state dir must hold no registry password: a private image pulled
 * and run by the real agent and driver (a Basic-auth registry serving the
 * fixture storage, a stand-in control plane handing out one desired set with
 * the pull credentials) leaves no file under the state dir containing it.
 * The specs the agent keeps for re-adoption used to carry it in plain text.
 */
import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, inject, it } from "vitest";
import { CellAgent } from "../../agent/cell/agent";
import { ControlPlaneClient } from "../../agent/cell/control-plane";
import { teardownCell } from "../../agent/cell/teardown";
import { defaultRunnerConfig } from "../../agent/supervisor/runner";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";
import { httpdSpec, openTestCell, resolveHttpd, type TestCell } from "../support/cell";
import { freeContainerCidr, makeCellAddress, uniqueTag, type CellAddress } from "../support/netns";
import { startRegistry, type TestRegistry } from "../support/registry";

const PASSWORD = `pull-secret-${uniqueTag(8)}`;

/** Every regular file under dir whose bytes contain needle; mounts (the containers' root filesystems) are not the agent's writing. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  const dev = lstatSync(dir).dev;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st || st.dev !== dev) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && readFileSync(p).includes(needle)) found.push(p);
    }
  };
  walk(dir);
  return found;
}

let privateRegistry: TestRegistry | undefined;
let cell: TestCell | undefined;
let address: CellAddress | undefined;
let agent: CellAgent | undefined;
let dir: string | undefined;
let cellName = "";
const server = createServer();
afterAll(async () => {
  await agent?.stopAll();
  await agent?.shutdown();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await cell?.rootfs.close();
  await cell?.network.dispose();
  if (cell && dir) await teardownCell({ name: cellName, state_dir: dir, cgroup_parent: cell.scope.cgroupParent });
  await address?.remove();
  await privateRegistry?.stop();
});

describe("pull credentials at rest on the cell", () => {
  it("a private pull leaves no file under the state dir holding the registry password", async () => {
    privateRegistry = await startRegistry({ auth: { kind: "basic", username: "puller", password: PASSWORD }, storageDir: inject("registry").storageDir });
    const image = await resolveHttpd(inject("registry").host);
    const spec = httpdSpec(image, {
      image: { ref: `${privateRegistry.host}/httpd:latest`, manifest_digest: image.manifest_digest, layers: image.layers, credentials: { username: "puller", password: PASSWORD } },
    });
    dir = await mkdtemp(join(tmpdir(), "berth-secrets-"));
    address = await makeCellAddress();
    const tag = uniqueTag(4);
    cellName = `sr-${tag}`;
    const min = 40000 + Math.floor(Math.random() * 20000);
    cell = await openTestCell({ name: cellName, stateDir: dir, cgroupParent: `berth-secrets-${tag}`, cellAddress: address.address, containerCidr: await freeContainerCidr(), hostPorts: { min, max: min }, registryHost: privateRegistry.host });
    const access = { version: 1, trusted_ca_certificates: [], insecure_registries: [privateRegistry.host], cell_only_registries: [] };
    let served = false;
    let running!: () => void;
    const isRunning = new Promise<void>((r) => (running = r));
    // The control plane's part: one desired set with the credentials, then "unchanged"; heartbeats tell when the instance runs.
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.url?.includes("/heartbeat")) {
          if (Buffer.concat(chunks).toString().includes('"RUNNING"')) running();
          return void res.writeHead(204).end();
        }
        if (req.url?.includes("/desired") && !served) {
          served = true;
          return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ protocol: PROTOCOL_VERSION, version: 1, instances: [spec], registry_access: access, staging_tasks: [] }));
        }
        setTimeout(() => res.writeHead(204).end(), 50);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    agent = new CellAgent(
      { stateDir: dir, capacity: { memory_mb: 1024, disk_mb: 1024, containers: 4 }, heartbeatIntervalMs: 200, bulkSyncIntervalMs: 30_000, pollJitterMs: 0, backoff: { baseMs: 10, maxMs: 20 }, runner: defaultRunnerConfig },
      {
        client: new ControlPlaneClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, "cell-guid", "credential"),
        driver: cell.driver,
        log: pino({ level: "silent" }),
        cachedLayers: async () => [],
        stage: async () => {
          throw new Error("no staging here");
        },
      },
    );
    await agent.start();
    await isRunning;
    expect(filesContaining(dir, PASSWORD)).toEqual([]);
    // The spec the agent keeps for re-adoption is there, without the password.
    expect(readdirSync(join(dir, "instances"))).toEqual([`${spec.instance_guid}.json`]);
  }, 120_000);
});
