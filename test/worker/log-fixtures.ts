/** Fixtures for log tests inside workerd: an app with an instance on a cell, sockets through the Worker, lines. */
import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { LogLine } from "../../shared/protocol/logs";
import * as schema from "../../worker/db/schema";
import { createSpace, db, unique } from "./support";

/** An app in a new space with one RUNNING instance placed on `cellGuid`, straight in D1. */
export async function appWithInstanceOn(cellGuid: string) {
  const space = await createSpace();
  const appGuid = crypto.randomUUID();
  await db().insert(schema.apps).values({ guid: appGuid, name: unique("app"), spaceGuid: space.guid, state: "STARTED", lifecycleType: "docker" });
  await db().insert(schema.processes).values({ guid: appGuid, appGuid, type: "web", version: crypto.randomUUID(), instances: 1, memoryInMb: 64, diskInMb: 64, healthCheckType: "port" });
  const instanceGuid = crypto.randomUUID();
  await db().insert(schema.instances).values({ instanceGuid, processGuid: appGuid, appGuid, index: 0, processVersion: "v", spec: {}, cellGuid, state: "RUNNING", since: Date.now() });
  return { space, appGuid, instanceGuid };
}

/** A WebSocket through the Worker (a cell's log socket or a tail), accepted. */
export async function openSocket(path: string, token: string): Promise<WebSocket> {
  const res = await exports.default.fetch(`https://berth.test${path}`, { headers: { upgrade: "websocket", authorization: `Bearer ${token}` } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  return ws;
}

/** The next message on `ws`, parsed. */
export const nextMessage = (ws: WebSocket) =>
  new Promise<any>((resolve) => ws.addEventListener("message", (e) => resolve(JSON.parse(e.data as string)), { once: true }));

export const line = (instance_guid: string, n: number, extra: Partial<LogLine> = {}): LogLine => ({
  timestamp: 1_700_000_000_000 + n, instance_index: 0, instance_guid, stream: "stdout", line: `line ${n}`, ...extra,
});

/** Maps a new route (host `unique`) to the app's web process, straight in D1. */
export async function mapRoute(appGuid: string, spaceGuid: string) {
  const routeGuid = crypto.randomUUID();
  await db().insert(schema.routes).values({ guid: routeGuid, host: unique("host"), domain: "apps.test", spaceGuid });
  await db().insert(schema.routeDestinations).values({ guid: crypto.randomUUID(), routeGuid, appGuid, processType: "web" });
  return routeGuid;
}

/** An access line as a router sends it for `appGuid`'s instance. */
export const rtr = (appGuid: string, instanceGuid: string, text: string) => ({ app_guid: appGuid, instance_guid: instanceGuid, timestamp: 1_700_000_000_500, line: text });
