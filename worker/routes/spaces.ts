import { Hono } from "hono";
import type { AppEnv } from "../env";

export const spaces = new Hono<AppEnv>();
