/** @module CC `links`: absolute hrefs built from the request's own origin (local, tunnelled or deployed alike). */
import type { Context } from "hono";

export const apiOrigin = (c: Context): string => new URL(c.req.url).origin;

/** `{ href: "<origin><path>" }`, CC's link object. */
export const link = (c: Context, path: string) => ({ href: `${apiOrigin(c)}${path}` });
