/**
 * @module What a user may reach through app-scoped endpoints. A developer gets
 * 404 for anything outside their spaces, exactly as for something missing
 * (CF never confirms that another space's app exists).
 */
import type { Context } from "hono";
import { type App, getApp } from "../db/apps";
import { getProcess, type Process } from "../db/processes";
import type { AppEnv } from "../env";
import { resourceNotFound } from "../errors";
import { link } from "../http/links";
import type { Linker } from "../presenters/links";
import { canAccessSpace, requireUser } from "./principal";

export type UserPrincipal = ReturnType<typeof requireUser>;

/** The `links` builder for this request. */
export const linkerOf = (c: Context<AppEnv>): Linker => (path) => link(c, path);

/** The app, if the caller (a user) may see it; else 404 CF-ResourceNotFound "App not found". */
export async function reachableApp(c: Context<AppEnv>, guid: string): Promise<{ principal: UserPrincipal; app: App }> {
  const principal = requireUser(c);
  const app = await getApp(c.var.db, guid);
  if (!app || !(await canAccessSpace(c, app.spaceGuid))) throw resourceNotFound("App");
  return { principal, app };
}

/** The process, if the caller (a user) may see its app; else 404 "Process not found". */
export async function reachableProcess(c: Context<AppEnv>, guid: string): Promise<{ principal: UserPrincipal; process: Process }> {
  const principal = requireUser(c);
  const process = await getProcess(c.var.db, guid);
  if (!process || !(await canAccessSpace(c, process.spaceGuid))) throw resourceNotFound("Process");
  return { principal, process };
}
