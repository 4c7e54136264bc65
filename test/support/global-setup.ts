/**
 * @module Global setup of the node and e2e projects: the built agent, router and
 * CLI (dist/, what production runs; test/support/stack.ts starts them) and the
 * fixture registry (`inject("registry")`), stopped at teardown.
 */
import type { TestProject } from "vitest/node";
import { buildAll } from "../../scripts/build";
import { acquireFixtureRegistry, releaseFixtureRegistry } from "./fixture-registry";

export async function setup(project: TestProject) {
  await buildAll();
  project.provide("registry", await acquireFixtureRegistry());
  return releaseFixtureRegistry;
}
