import { Hono } from "hono";
import type { AppEnv } from "../env";

export const routesApi = new Hono<AppEnv>();
