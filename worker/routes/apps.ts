import { Hono } from "hono";
import type { AppEnv } from "../env";

export const apps = new Hono<AppEnv>();
