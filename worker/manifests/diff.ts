/**
 * @module CC's manifest diff (POST /v3/spaces/:guid/manifest_diff): JSON-patch
 * operations with `was`, from the apps' current manifests to the one given,
 * over the keys the given one names (CC's SpaceDiffManifest); pure.
 */

export interface DiffOp {
  op: "add" | "replace" | "remove";
  path: string;
  was?: unknown;
  value?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const pointer = (key: string | number) => String(key).replace(/~/g, "~0").replace(/\//g, "~1");

/** The ops turning `was` into `now` at `path`, for the keys `now` names. */
export function diffValue(path: string, was: unknown, now: unknown, out: DiffOp[] = []): DiffOp[] {
  if (was === undefined) out.push({ op: "add", path, value: now });
  else if (isObject(was) && isObject(now)) {
    for (const [k, v] of Object.entries(now)) diffValue(`${path}/${pointer(k)}`, was[k], v, out);
  } else if (Array.isArray(was) && Array.isArray(now)) {
    now.forEach((v, i) => diffValue(`${path}/${i}`, was[i], v, out));
    for (let i = now.length; i < was.length; i++) out.push({ op: "remove", path: `${path}/${i}`, was: was[i] });
  } else if (JSON.stringify(was) !== JSON.stringify(now)) out.push({ op: "replace", path, was, value: now });
  return out;
}

/** `current[i]` is the app of `given[i]`'s name as it is, or undefined for a new app. */
export function manifestDiff(given: Record<string, unknown>[], current: (Record<string, unknown> | undefined)[]): DiffOp[] {
  return given.flatMap((app, i) => diffValue(`/applications/${i}`, current[i] ?? { name: app.name }, app));
}
