/**
 * @module Rolling deployments as the cf CLI drives them: `--strategy rolling`
 * (push, restart, restage) creates a deployment and polls it until it is
 * DEPLOYED (a canceled or superseded one fails the command; past the start
 * timeout the CLI cancels it, as cf v8 does), and `cancel-deployment`. The
 * rolling itself is the control plane's.
 */
import type { Command } from "commander";
import { findApp, UsageError, type Ctx } from "../context";
import type { Action } from "../main";

interface DeploymentResource {
  guid: string;
  status: { value: string; reason: string };
}

/** The --strategy values the cf CLI takes: rolling, or null for the default (stop and start). */
export function parseStrategy(value: string | undefined): "rolling" | undefined {
  if (value === undefined || value === "null") return undefined;
  if (value === "rolling") return "rolling";
  throw new UsageError(`Invalid deployment strategy '${value}': use rolling or null`);
}

export const strategyOption = ["--strategy <strategy>", "deployment strategy, either rolling or null"] as const;

/** Creates a rolling deployment of `dropletGuid` (the app's current droplet when absent) and waits until it is DEPLOYED. */
export async function deployRolling(ctx: Ctx, appGuid: string, dropletGuid?: string): Promise<DeploymentResource> {
  const api = ctx.api();
  ctx.out.say("Creating deployment...");
  const created = await api.post<DeploymentResource>("/v3/deployments", {
    relationships: { app: { data: { guid: appGuid } } },
    ...(dropletGuid ? { droplet: { guid: dropletGuid } } : {}),
  });
  ctx.out.say("Waiting for app to deploy...");
  const timeoutMs = Number(ctx.env.BERTH_STARTUP_TIMEOUT_MS ?? 300_000);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = await api.get<DeploymentResource>(`/v3/deployments/${created.guid}`);
    if (d.status.value === "FINALIZED") {
      if (d.status.reason === "DEPLOYED") return d;
      throw new Error(`Deployment has been ${d.status.reason === "SUPERSEDED" ? "superseded" : "canceled"}`);
    }
    if (Date.now() > deadline) {
      await api.post(`/v3/deployments/${created.guid}/actions/cancel`);
      throw new Error(`Start app timeout after ${Math.round(timeoutMs / 1000)} s: the deployment was canceled`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function registerDeployments(program: Command, action: Action) {
  program
    .command("cancel-deployment <name>")
    .description("Cancel the most recent deployment of an app: back to the previous droplet, the old instances kept")
    .action(action(async (ctx, name: string) => {
      const app = await findApp(ctx, name);
      ctx.out.say(`Canceling deployment for app ${name}...`);
      const q = `app_guids=${app.guid}&status_values=ACTIVE&order_by=-created_at&per_page=1&page=1`;
      const [active] = (await ctx.api().get<{ resources: DeploymentResource[] }>(`/v3/deployments?${q}`)).resources;
      if (!active) throw new UsageError("No active deployment found for app.");
      await ctx.api().post(`/v3/deployments/${active.guid}/actions/cancel`);
      ctx.out.say("OK");
      ctx.out.data({ canceled: active.guid });
    }));
}
