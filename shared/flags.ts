/** @module Command-line values the agent, the router and the CLI share. */
import { InvalidArgumentError } from "commander";

/** A non-negative integer flag; anything else (`12abc`, `-1`, `1.5`) is refused, naming the value. */
export function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected a non-negative integer, got '${value}'`);
  return Number(value);
}
