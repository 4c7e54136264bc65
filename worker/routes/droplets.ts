import { Hono } from "hono";
import type { AppEnv } from "../env";

export const droplets = new Hono<AppEnv>();
