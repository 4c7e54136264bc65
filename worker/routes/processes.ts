import { Hono } from "hono";
import type { AppEnv } from "../env";

export const processes = new Hono<AppEnv>();
