/**
 * @module Which data path carries requests: HAProxy driven by this daemon
 * (the default where HAProxy is installed), or the Node proxy in-process (a
 * fallback for development without HAProxy). The same tests run against both
 * (BERTH_ROUTER_DATA_PATH picks one for a test run).
 */
import { accessSync, constants } from "node:fs";
import path from "node:path";

export type DataPath = "haproxy" | "node";
export const DATA_PATHS = ["haproxy", "node"] as const;

/** Whether an executable `name` is on PATH. */
function onPath(name: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? "").split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** BERTH_ROUTER_DATA_PATH when set; else HAProxy when installed, the Node proxy when not. */
export function defaultDataPath(env: NodeJS.ProcessEnv = process.env): DataPath {
  const chosen = env.BERTH_ROUTER_DATA_PATH;
  if (chosen === "haproxy" || chosen === "node") return chosen;
  return onPath("haproxy", env) ? "haproxy" : "node";
}
