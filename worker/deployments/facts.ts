/**
 * @module What a convergence pass reads for the deployment updater: the ACTIVE
 * deployments (few; read fleet-wide by the status index), and, only for the
 * apps among them the pass converges, their web processes oldest first and
 * which of those a superseded deployment had brought up.
 */
import { and, asc, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../env";
import { deployments, processes } from "../db/schema";
import { paramChunks } from "../db/param-chunks";
import type { DeploymentFacts } from "./pass";

export async function readDeploymentFacts(db: Db, appGuids: Set<string>): Promise<DeploymentFacts> {
  const facts: DeploymentFacts = { active: [], webProcesses: new Map(), superseded: new Map() };
  const rows = await db.select().from(deployments).where(eq(deployments.statusValue, "ACTIVE"));
  for (const d of rows) {
    if (!appGuids.has(d.appGuid) || d.deployingProcessGuid === null) continue;
    if (d.state !== "DEPLOYING" && d.state !== "CANCELING") continue;
    facts.active.push({
      guid: d.guid, appGuid: d.appGuid, state: d.state, deployingProcessGuid: d.deployingProcessGuid,
      targetInstances: d.originalInstances, maxInFlight: d.maxInFlight,
    });
  }
  for (const part of paramChunks([...new Set(facts.active.map((d) => d.appGuid))])) {
    const [web, superseded] = await db.batch([
      // Creation order; rowid breaks ties within a second.
      db.select({ guid: processes.guid, appGuid: processes.appGuid, instances: processes.instances }).from(processes)
        .where(and(inArray(processes.appGuid, part), eq(processes.type, "web")))
        .orderBy(asc(processes.createdAt), sql`${processes}.rowid`),
      db.select({ process: deployments.deployingProcessGuid, state: deployments.state }).from(deployments)
        .where(and(inArray(deployments.appGuid, part), eq(deployments.statusReason, "SUPERSEDED"),
          inArray(deployments.deployingProcessGuid, db.select({ g: processes.guid }).from(processes).where(inArray(processes.appGuid, part))))),
    ]);
    for (const p of web) facts.webProcesses.set(p.appGuid, [...(facts.webProcesses.get(p.appGuid) ?? []), { guid: p.guid, instances: p.instances }]);
    for (const s of superseded) {
      if (s.process !== null && (s.state === "DEPLOYED" || s.state === "CANCELED")) facts.superseded.set(s.process, s.state);
    }
  }
  return facts;
}
