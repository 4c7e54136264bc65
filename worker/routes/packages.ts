import { Hono } from "hono";
import type { AppEnv } from "../env";

export const packages = new Hono<AppEnv>();
