/**
 * @module Global setup of the node project: the fixture registry
 * (`inject("registry")`), stopped at teardown.
 */
import type { TestProject } from "vitest/node";
import { acquireFixtureRegistry, releaseFixtureRegistry } from "./fixture-registry";

export async function setup(project: TestProject) {
  project.provide("registry", await acquireFixtureRegistry());
  return releaseFixtureRegistry;
}
