/**
 * @module Deployments in D1: creating one (CC's DeploymentCreate), asking one
 * to cancel (DeploymentCancel), reading and listing. The updater's steps are
 * written by the scheduler's pass (worker/deployments/pass.ts), not here.
 *
 * Creating one for a STARTED app adds a web process cloned from the newest one
 * (new guid, new version, max_in_flight instances), points the app at the
 * deployment's droplet and supersedes the app's ACTIVE deployment, in one
 * batch; the scheduler then rolls it. For a STOPPED app it just sets the
 * droplet and starts the app: the deployment is born DEPLOYED (CC).
 */
import { and, asc, desc, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../env";
import { type App, changeAppState, setCurrentDroplet } from "../db/apps";
import { type AuditEventInput, auditEvent, auditEventIfChanged } from "../db/audit";
import { type Listing } from "../db/listing";
import { selectPage } from "../db/paging";
import { visibleTo } from "../db/roles";
import { apps, deployments, droplets, processes } from "../db/schema";
import { isoNow, newGuid } from "../http/ids";
import { checkAppStartQuotas, checkProcessQuotas } from "../quotas/repo";
import { DEPLOYED, DEPLOYING, CANCELING, isCancelable, supersededStatus } from "./updater";

export type Deployment = typeof deployments.$inferSelect;

/** CC's words when the droplet cannot become the app's (AppAssignDroplet). */
export const UNASSIGNABLE_DROPLET = "Unable to assign current droplet. Ensure the droplet exists and belongs to this app.";
export const NO_DROPLET = "Invalid droplet. Please specify a droplet in the request or set a current droplet for the app.";

export async function getDeployment(db: Db, guid: string): Promise<Deployment | undefined> {
  const [row] = await db.select().from(deployments).where(eq(deployments.guid, guid)).limit(1);
  return row;
}

/** The app's ACTIVE deployment, newest first (there is at most one: creating one supersedes the last). */
export async function activeDeployment(db: Db, appGuid: string): Promise<Deployment | undefined> {
  const [row] = await db.select().from(deployments)
    .where(and(eq(deployments.appGuid, appGuid), eq(deployments.statusValue, "ACTIVE")))
    .orderBy(desc(deployments.createdAt), sql`${deployments}.rowid desc`).limit(1);
  return row;
}

/** CC's app.deploying?: a deployment is rolling (a cancel in progress does not count). */
export async function isDeploying(db: Db, appGuid: string): Promise<boolean> {
  const [row] = await db.select({ guid: deployments.guid }).from(deployments)
    .where(and(eq(deployments.appGuid, appGuid), eq(deployments.state, "DEPLOYING"))).limit(1);
  return row !== undefined;
}

/** CC's words for scaling the web process while it rolls (ProcessScale). */
export const SCALE_WHILE_DEPLOYING = "Cannot scale this process while a deployment is in flight.";

/** The app's web processes, oldest first. */
async function webProcesses(db: Db, appGuid: string) {
  return db.select().from(processes).where(and(eq(processes.appGuid, appGuid), eq(processes.type, "web")))
    .orderBy(asc(processes.createdAt), sql`${processes}.rowid`);
}

export interface NewDeployment {
  app: App;
  /** The droplet named in the request; the app's current one when absent. */
  dropletGuid?: string;
  maxInFlight: number;
  /** The request body, recorded in the audit event (CC's audit_hash). */
  request: Record<string, unknown>;
}

/** Creates the deployment; a string is CC's 422 detail (nothing written). */
export async function createDeployment(db: Db, input: NewDeployment, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<Deployment | string> {
  const { app } = input;
  const dropletGuid = input.dropletGuid ?? app.currentDropletGuid;
  if (!dropletGuid) return NO_DROPLET;
  const [droplet] = await db.select({ guid: droplets.guid }).from(droplets)
    .where(and(eq(droplets.guid, dropletGuid), eq(droplets.appGuid, app.guid), eq(droplets.state, "STAGED"))).limit(1);
  if (!droplet) return UNASSIGNABLE_DROPLET;
  const [previous, web] = await Promise.all([activeDeployment(db, app.guid), webProcesses(db, app.guid)]);
  const oldest = web[0];
  const newest = web[web.length - 1];
  if (!oldest || !newest) return "The app has no web process.";
  const ts = isoNow(now);
  const guid = newGuid();
  const originalInstances = previous ? previous.originalInstances : oldest.instances;
  const supersede = previous
    ? [db.update(deployments).set({ ...supersededStatus(previous.state), updatedAt: ts, statusUpdatedAt: ts })
        .where(and(eq(deployments.guid, previous.guid), eq(deployments.state, previous.state)))]
    : [];
  const created = (extra: Partial<Deployment> & Pick<Deployment, "state" | "statusValue" | "statusReason" | "deployingProcessGuid" | "newProcesses">) =>
    db.insert(deployments).values({
      guid, appGuid: app.guid, strategy: "rolling", dropletGuid, previousDropletGuid: app.currentDropletGuid, originalInstances,
      maxInFlight: input.maxInFlight, statusUpdatedAt: ts, createdAt: ts, updatedAt: ts, ...extra,
    });
  const recorded = auditEvent(db, {
    type: "audit.app.deployment.create", actor, target: { guid: app.guid, type: "app", name: app.name }, spaceGuid: app.spaceGuid,
    data: { deployment_guid: guid, droplet_guid: dropletGuid, type: null, revision_guid: null, request: input.request, strategy: "rolling" }, now,
  });

  if (app.state === "STOPPED") {
    await checkAppStartQuotas(db, app);
    if (dropletGuid !== app.currentDropletGuid && !(await setCurrentDroplet(db, app, dropletGuid, actor, now))) return UNASSIGNABLE_DROPLET;
    await changeAppState(db, app, "start", actor, now);
    await db.batch([created({ ...DEPLOYED, deployingProcessGuid: null, newProcesses: [] }), ...supersede, recorded]);
  } else {
    const processGuid = newGuid();
    const instances = Math.min(input.maxInFlight, originalInstances);
    await checkProcessQuotas(db, app.spaceGuid, [{
      before: null, after: { instances, memoryInMb: newest.memoryInMb, logRate: newest.logRateLimitInBytesPerSecond },
    }], true);
    await db.batch([
      // A clone of the newest web process (CC's clone_existing_web_process) on the deployment's droplet.
      db.insert(processes).values({ ...newest, guid: processGuid, version: newGuid(), instances, createdAt: ts, updatedAt: ts }),
      db.update(apps).set({ currentDropletGuid: dropletGuid, updatedAt: ts }).where(eq(apps.guid, app.guid)),
      ...(dropletGuid === app.currentDropletGuid ? [] : [auditEvent(db, {
        type: "audit.app.droplet.mapped", actor, target: { guid: app.guid, type: "app", name: app.name },
        spaceGuid: app.spaceGuid, data: { request: { droplet_guid: dropletGuid } }, now,
      })]),
      ...supersede,
      created({ ...DEPLOYING, deployingProcessGuid: processGuid, newProcesses: [{ guid: processGuid, type: "web" }] }),
      recorded,
    ]);
  }
  return (await getDeployment(db, guid))!;
}

/**
 * Asks the updater to cancel: the app goes back to the previous droplet now,
 * the next pass rolls the processes back. A string is CC's 422 detail.
 */
export async function cancelDeployment(db: Db, d: Deployment, app: App, actor: AuditEventInput["actor"], now: Date = new Date()): Promise<string | undefined> {
  const refusal = `Cannot cancel a deployment with status: ${d.statusValue} and reason: ${d.statusReason}`;
  if (!isCancelable(d.state)) return refusal;
  const ts = isoNow(now);
  const restore = d.previousDropletGuid;
  if (restore) {
    const [droplet] = await db.select({ guid: droplets.guid }).from(droplets)
      .where(and(eq(droplets.guid, restore), eq(droplets.appGuid, app.guid), eq(droplets.state, "STAGED"))).limit(1);
    if (!droplet) return UNASSIGNABLE_DROPLET;
  }
  const [moved] = await db.batch([
    db.update(deployments).set({ ...CANCELING, updatedAt: ts, ...(d.state === "CANCELING" ? {} : { statusUpdatedAt: ts }) })
      .where(and(eq(deployments.guid, d.guid), inArray(deployments.state, ["DEPLOYING", "CANCELING"]))),
    auditEventIfChanged(db, {
      type: "audit.app.deployment.cancel", actor, target: { guid: app.guid, type: "app", name: app.name }, spaceGuid: app.spaceGuid,
      data: { deployment_guid: d.guid, droplet_guid: d.dropletGuid }, now,
    }),
    // Only if it is canceling now: a deployment that finished meanwhile keeps the app on its droplet.
    ...(restore ? [db.update(apps).set({ currentDropletGuid: restore, updatedAt: ts }).where(and(eq(apps.guid, app.guid), cancelingNow(d.guid)))] : []),
  ]);
  return moved.meta.changes === 1 ? undefined : refusal;
}

const cancelingNow = (guid: string) =>
  sql`exists (select 1 from ${deployments} where ${deployments.guid} = ${guid} and ${deployments.state} = 'CANCELING')`;

const ORDER = { created_at: deployments.createdAt, updated_at: deployments.updatedAt };
export type DeploymentOrder = keyof typeof ORDER | `-${keyof typeof ORDER}`;

export interface DeploymentFilter extends Listing {
  appGuids?: string[];
  states?: string[];
  statusValues?: string[];
  statusReasons?: string[];
  guids?: string[];
  orderBy: DeploymentOrder;
}

export async function listDeployments(db: Db, f: DeploymentFilter): Promise<{ total: number; deployments: Deployment[] }> {
  const visible = visibleTo(db, f.viewer, apps.spaceGuid);
  const cond = and(
    f.appGuids && inArray(deployments.appGuid, f.appGuids),
    f.states && inArray(deployments.state, f.states as Deployment["state"][]),
    f.statusValues && inArray(deployments.statusValue, f.statusValues as Deployment["statusValue"][]),
    f.statusReasons && inArray(deployments.statusReason, f.statusReasons as Deployment["statusReason"][]),
    f.guids && inArray(deployments.guid, f.guids),
    visible && inArray(deployments.appGuid, db.select({ g: apps.guid }).from(apps).where(visible)),
  );
  const descending = f.orderBy.startsWith("-");
  const column = ORDER[(descending ? f.orderBy.slice(1) : f.orderBy) as keyof typeof ORDER];
  const { total, rows } = await selectPage(db, deployments, cond, [descending ? desc(column) : asc(column), descending ? sql`rowid desc` : sql`rowid`], f);
  return { total, deployments: rows };
}
