/**
 * The cell's log shipper against the real control plane (wrangler dev): lines
 * written while the control plane is down stay on disk and are shipped, once
 * and in order, when it is back; a tail that never reads holds nobody up.
 */
import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import WebSocket from "ws";
import { ControlPlaneClient, register } from "../../agent/cell/control-plane";
import { LogShipper, type ShippedInstance } from "../../agent/logs/shipper";
import { controlPlaneSecrets, freePort, startControlPlane, type ControlPlane } from "../support/control-plane";
import { adminCall, enrollmentToken, eventually } from "../support/stack";
import { isInstanceRef } from "../../shared/protocol/desired-set";

const registry = inject("registry");
const secrets = controlPlaneSecrets();
let cp: ControlPlane;
let port: number;
let persistDir: string;
let cellGuid: string;
let credential: string;
let instance: ShippedInstance;

// The test heartbeats once: a long TTL keeps the cell (and so the app's
// instance on it) alive across the restart however slowly wrangler comes back.
const startCp = () => startControlPlane({ port, persistDir, ...secrets, vars: { LONG_POLL_HOLD_MS: "500", HEARTBEAT_TTL_MS: "600000" } });
const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}\n`).join("");
/** The app's own lines (the API and STG lines of its creation are there too). */
const recent = async () =>
  (await adminCall<{ lines: { line: string; source?: string }[] }>(cp, "GET", `/v3/apps/${instance.appGuid}/logs`)).lines.filter((l) => l.source === undefined).map((l) => l.line);

/** Every directory the file makes, removed at the end. */
const made: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(prefix);
  made.push(dir);
  return dir;
}

beforeAll(async () => {
  port = await freePort();
  persistDir = await tempDir(join(tmpdir(), "berth-logs-d1-"));
  cp = await startCp();
  await adminCall(cp, "PATCH", "/v3/feature_flags/diego_docker", { enabled: true });
  await adminCall(cp, "PATCH", "/v3/admin/docker_registry_access", { insecure_registries: [registry.host] });
  const reg = await register(cp.url, {
    enrollment_token: await enrollmentToken(cp, "cell"), name: `logs-${process.pid}`, zone: "z1", address: "198.18.0.1",
    capacity: { memory_mb: 1024, disk_mb: 1024, containers: 4 },
  });
  cellGuid = reg.guid;
  credential = reg.credential;
  const client = new ControlPlaneClient(cp.url, cellGuid, credential);
  const beat = { capacity: { memory_mb: 1024, disk_mb: 1024, containers: 4 }, free: { memory_mb: 1024, disk_mb: 1024, containers: 4 }, cached_layers: [], instances: [] };
  await client.heartbeat(beat);
  // An app placed on this cell: a cell may ship only the logs of apps it runs.
  const space = await adminCall(cp, "POST", "/v3/spaces", { name: `logs-${process.pid}` });
  const app = await adminCall(cp, "POST", "/v3/apps", { name: "talker", lifecycle: { type: "docker", data: {} }, relationships: { space: { data: { guid: space.guid } } } });
  await adminCall(cp, "POST", `/v3/processes/${app.guid}/actions/scale`, { memory_in_mb: 64, disk_in_mb: 64 });
  const pkg = await adminCall(cp, "POST", "/v3/packages", { type: "docker", relationships: { app: { data: { guid: app.guid } } }, data: { image: `${registry.host}/httpd:latest` } });
  const build = await adminCall(cp, "POST", "/v3/builds", { package: { guid: pkg.guid } });
  const staged = await eventually("the build to stage", async () => {
    const b = await adminCall(cp, "GET", `/v3/builds/${build.guid}`);
    if (b.state === "FAILED") throw new Error(b.error);
    return b.state === "STAGED" ? b : undefined;
  });
  await adminCall(cp, "PATCH", `/v3/apps/${app.guid}/relationships/current_droplet`, { data: { guid: staged.droplet.guid } });
  await adminCall(cp, "POST", `/v3/apps/${app.guid}/actions/start`);
  const set = await eventually("the instance placed on this cell", async () => {
    await client.heartbeat(beat);
    const s = await client.desired(null, undefined, "all");
    return s && s.instances.length > 0 ? s : undefined;
  });
  const spec = set.instances[0]!;
  if (isInstanceRef(spec)) throw new Error("specs=all sent a reference");
  instance = { instanceGuid: spec.instance_guid, appGuid: spec.app_guid, index: spec.index, logDir: await tempDir(join(tmpdir(), "berth-logs-io-")) };
}, 180_000);

afterAll(async () => {
  await cp?.stop();
  for (const dir of made) await rm(dir, { recursive: true, force: true });
});

describe("log shipper", () => {
  it("keeps lines on disk while the control plane is down and ships each once, in order, when it is back", async () => {
    const stateDir = await tempDir(join(tmpdir(), "berth-logs-state-"));
    const shipper = new LogShipper({ apiUrl: cp.url, cellGuid, credential, stateDir, intervalMs: 100, ackTimeoutMs: 5000, log: pino({ level: "silent" }) });
    shipper.track(instance);
    await writeFile(join(instance.logDir, "stdout.log"), lines(1, 30));
    await cp.stop();
    await shipper.shipAll(); // fails inside: nothing acknowledged, the cursor stays
    await appendFile(join(instance.logDir, "stdout.log"), lines(31, 50));
    cp = await startCp();
    await shipper.shipAll();
    expect(await recent()).toEqual(lines(1, 50).trimEnd().split("\n"));
    await appendFile(join(instance.logDir, "stdout.log"), lines(51, 55));
    await shipper.shipAll();
    expect(await recent()).toEqual(lines(1, 55).trimEnd().split("\n"));
    await shipper.stop();
  }, 120_000);

  it("ships the cell's own lines (CELL/<index>) on the app's socket: before the instance is tracked, beside its files, and the last ones at untrack", async () => {
    const stateDir = await tempDir(join(tmpdir(), "berth-logs-state-"));
    const shipper = new LogShipper({ apiUrl: cp.url, cellGuid, credential, stateDir, intervalMs: 100, ackTimeoutMs: 5000, log: pino({ level: "silent" }) });
    const inst = { ...instance, logDir: await tempDir(join(tmpdir(), "berth-logs-io-")) };
    shipper.cellLine(inst, `Cell ${cellGuid} creating container for instance ${inst.instanceGuid}`);
    await shipper.shipAll(); // not tracked yet: the line goes anyway
    shipper.track(inst);
    await writeFile(join(inst.logDir, "stdout.log"), "app says hi\n");
    shipper.cellLine(inst, "Container became healthy");
    await shipper.shipAll();
    shipper.cellLine(inst, `Cell ${cellGuid} destroying container for instance ${inst.instanceGuid}`);
    await shipper.untrack(inst.instanceGuid);
    const read = await adminCall<{ envelopes: { batch: { tags: { source_type: string }; instance_id: string; log: { payload: string } }[] } }>(
      cp, "GET", `/api/v1/read/${inst.appGuid}?descending=true&limit=4`,
    );
    const got = read.envelopes.batch.reverse().map((e) => [e.tags.source_type, e.instance_id, Buffer.from(e.log.payload, "base64").toString()]);
    expect(got).toEqual([
      ["CELL", String(inst.index), `Cell ${cellGuid} creating container for instance ${inst.instanceGuid}`],
      ["CELL", String(inst.index), "Container became healthy"],
      ["APP/PROC/WEB", String(inst.index), "app says hi"],
      ["CELL", String(inst.index), `Cell ${cellGuid} destroying container for instance ${inst.instanceGuid}`],
    ]);
    await shipper.stop();
  }, 120_000);

  it("drops CELL lines the control plane refuses (an app this cell runs nothing of) instead of keeping them forever", async () => {
    const stateDir = await tempDir(join(tmpdir(), "berth-logs-state-"));
    const shipper = new LogShipper({ apiUrl: cp.url, cellGuid, credential, stateDir, intervalMs: 100, ackTimeoutMs: 5000, log: pino({ level: "silent" }) });
    shipper.cellLine({ instanceGuid: "not-placed", appGuid: crypto.randomUUID(), index: 0 }, "forged");
    await shipper.shipAll();
    expect(shipper.droppedCellLines).toBe(1);
    await shipper.stop();
  }, 60_000);

  it("a tail that never reads does not hold the shipper up", async () => {
    const url = `${cp.url.replace("http", "ws")}/v3/apps/${instance.appGuid}/logs/tail`;
    const tail = new WebSocket(url, { headers: { authorization: `Bearer ${secrets.adminToken}` } });
    await new Promise((r, j) => tail.once("open", r).once("error", j));
    // Stop reading from the socket: the control plane's sends pile up on its side.
    (tail as unknown as { _socket: { pause(): void } })._socket.pause();
    const stateDir = await tempDir(join(tmpdir(), "berth-logs-state-"));
    const shipper = new LogShipper({ apiUrl: cp.url, cellGuid, credential, stateDir, intervalMs: 100, ackTimeoutMs: 5000, log: pino({ level: "silent" }) });
    const busy = { ...instance, logDir: await tempDir(join(tmpdir(), "berth-logs-io-")) };
    shipper.track(busy);
    const long = "x".repeat(1000);
    await writeFile(join(busy.logDir, "stdout.log"), Array.from({ length: 40 }, (_, i) => `${i} ${long}\n`).join(""));
    // Every batch must be acknowledged although the tail reads nothing: a missed ack
    // leaves the cursor behind and the batch is shipped again (a duplicate below).
    for (let round = 0; round < 3; round++) {
      await shipper.shipAll();
      await appendFile(join(busy.logDir, "stdout.log"), Array.from({ length: 40 }, (_, i) => `${round}-${i} ${long}\n`).join(""));
    }
    await shipper.shipAll();
    const expected = [
      ...Array.from({ length: 40 }, (_, i) => `${i} ${long}`),
      ...[0, 1, 2].flatMap((round) => Array.from({ length: 40 }, (_, i) => `${round}-${i} ${long}`)),
    ];
    expect((await recent()).slice(-expected.length)).toEqual(expected);
    tail.terminate();
    await shipper.stop();
  }, 120_000);
});
