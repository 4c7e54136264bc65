import { Hono } from "hono";
import type { AppEnv } from "../env";

export const registry_access = new Hono<AppEnv>();
