/**
 * Fixtures for the agent-protocol tests: cells enrolled through the API, apps
 * with a STAGED droplet whose image spec is a real resolved image (the shape
 * staging stores), instances inserted straight into D1, and protocol reports.
 */
import { eq } from "drizzle-orm";
import { env } from "cloudflare:workers";
import * as schema from "../../worker/db/schema";
import type { InstanceReport } from "../../shared/protocol/instance";
import type { ResolvedImage } from "../../shared/protocol/image";
import type { PassReport } from "../../worker/durable/scheduler";
import type { WakeScope } from "../../worker/scheduling/wake-scope";
import type { CellCredential } from "../../worker/scheduling/cells-repo";
import { hashToken } from "../../worker/auth/tokens";
import { ADMIN, api, db, unique } from "./support";

const D = (c: string) => `sha256:${c.repeat(64)}`;

export const IMAGE: ResolvedImage = {
  ref: "registry.test:5000/web:1",
  manifest_digest: D("a"),
  layers: [{ digest: D("b"), size: 1000, media_type: "application/vnd.oci.image.layer.v1.tar+gzip", diff_id: D("c") }],
  config: { env: ["PATH=/bin", "FROM_IMAGE=1"], entrypoint: ["/bin/httpd"], cmd: ["-f", "-p", "8000"], user: "nobody", workdir: "/www", exposed_ports: [{ port: 8000, protocol: "tcp" }] },
};

export async function enroll(kind: "cell" | "router", extra: Record<string, unknown> = {}) {
  const token = await api("POST", "/v3/cells/enrollment_tokens", { token: ADMIN, body: { kind } });
  if (token.status !== 201) throw new Error(`enrollment token: ${token.status} ${JSON.stringify(token.json)}`);
  const body = kind === "cell"
    ? { protocol: 1, enrollment_token: token.json.token, name: unique("cell"), zone: "z1", address: "10.1.0.1", capacity: { memory_mb: 4096, disk_mb: 8192, containers: 20 }, ...extra }
    : { protocol: 1, enrollment_token: token.json.token, name: unique("router"), ...extra };
  const res = await api("POST", "/v3/cells/register", { body });
  if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json as { guid: string; credential: string; name: string };
}

/** What a cell's requests to the hot routes carry (auth/principal.ts's CellClaim): its guid and its token's hash. */
export async function credentialOf(cell: { guid: string; credential: string }): Promise<CellCredential> {
  return { guid: cell.guid, tokenHash: await hashToken(cell.credential) };
}

/** A docker app in a fresh space with a current droplet of IMAGE; not started. */
export async function appWithDroplet(spaceGuid: string, opts: { instances?: number; memory?: number } = {}) {
  const app = await api("POST", "/v3/apps", {
    token: ADMIN, body: { name: unique("app"), relationships: { space: { data: { guid: spaceGuid } } }, lifecycle: { type: "docker", data: {} }, environment_variables: { APP_VAR: "x" } },
  });
  if (app.status !== 201) throw new Error(`app: ${app.status} ${JSON.stringify(app.json)}`);
  const droplet = crypto.randomUUID();
  await db().insert(schema.droplets).values({
    guid: droplet, appGuid: app.json.guid, state: "STAGED", image: IMAGE.ref, manifestDigest: IMAGE.manifest_digest,
    executionMetadata: "{}", processTypes: { web: "/bin/httpd -f -p 8000" }, imageSpec: IMAGE,
  });
  await db().update(schema.apps).set({ currentDropletGuid: droplet }).where(eq(schema.apps.guid, app.json.guid));
  await db().update(schema.processes).set({ instances: opts.instances ?? 1, memoryInMb: opts.memory ?? 256, diskInMb: 256 }).where(eq(schema.processes.guid, app.json.guid));
  return { guid: app.json.guid as string, name: app.json.name as string };
}

/**
 * Runs one scheduler pass now and answers what it did: a full one, or one over
 * `scope` (requests only wake the scheduler; its alarm runs the pass a moment later).
 */
export async function pass(scope: WakeScope = { full: true }): Promise<PassReport> {
  return env.SCHEDULER.get(env.SCHEDULER.idFromName("global")).runPass(scope);
}

/** No running apps and no live cells: where each scheduling test starts (D1 is shared within a file). */
export async function emptyFleet(): Promise<void> {
  await db().update(schema.apps).set({ state: "STOPPED" });
  await db().update(schema.cells).set({ state: "LOST", lastHeartbeatAt: 1 });
  await pass();
  await db().delete(schema.instances);
}

export const report = (instance_guid: string, state: InstanceReport["state"], extra: Partial<InstanceReport> = {}): InstanceReport => ({
  instance_guid, state, since: Date.now(), host_port: state === "RUNNING" ? 61001 : null, crash_count: 0, exit: null, reason: null, usage: null, ...extra,
});

export const heartbeat = (instances: InstanceReport[], extra: Record<string, unknown> = {}) => ({
  protocol: 1, capacity: { memory_mb: 4096, disk_mb: 8192, containers: 20 }, free: { memory_mb: 4096, disk_mb: 8192, containers: 20 },
  cached_layers: [], instances, ...extra,
});

/** A heartbeat that lists no instances: presence and resources only, what a steady cell sends most. */
export const presence = (extra: Record<string, unknown> = {}) => {
  const { instances: _listed, ...beat } = heartbeat([], extra);
  return beat;
};

export async function instancesOfApp(appGuid: string) {
  return db().select().from(schema.instances).where(eq(schema.instances.appGuid, appGuid)).orderBy(schema.instances.index);
}

/** Drains every other cell, so the scheduler places new work on this one only. */
export async function onlyActiveCell(cellGuid: string) {
  await db().update(schema.cells).set({ state: "DRAINING" }).where(eq(schema.cells.state, "ACTIVE"));
  await db().update(schema.cells).set({ state: "ACTIVE" }).where(eq(schema.cells.guid, cellGuid));
}
