/** @module What presenters get to build CC `links`: a function from an API path to `{href}`. */
export type Linker = (path: string) => { href: string };

/** A link CC marks with the HTTP method to use (actions). */
export const postLink = (l: Linker, path: string) => ({ ...l(path), method: "POST" as const });

/** CC's empty metadata (Berth keeps no labels or annotations). */
export const emptyMetadata = () => ({ labels: {}, annotations: {} });
