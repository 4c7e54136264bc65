import { Hono } from "hono";
import type { AppEnv } from "../env";

export const audit_events = new Hono<AppEnv>();
