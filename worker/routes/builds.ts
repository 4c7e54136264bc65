import { Hono } from "hono";
import type { AppEnv } from "../env";

export const builds = new Hono<AppEnv>();
