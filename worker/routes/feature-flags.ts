import { Hono } from "hono";
import type { AppEnv } from "../env";

export const feature_flags = new Hono<AppEnv>();
