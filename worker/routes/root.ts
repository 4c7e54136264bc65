import { Hono } from "hono";
import type { AppEnv } from "../env";

export const root = new Hono<AppEnv>();
