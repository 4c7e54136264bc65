/** @module Command-line flags of the benches: `--name N`, a positive integer, or the fallback. */
export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
  return v;
}

/** `--name VALUE`, one of `choices`, or the fallback. */
export function choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (!choices.includes(v as T)) throw new Error(`--${name} must be one of ${choices.join(", ")}`);
  return v as T;
}

/** `--name N`, a positive integer, when given. */
export function optionalArg(name: string): number | undefined {
  return process.argv.includes(`--${name}`) ? arg(name, 0) : undefined;
}
