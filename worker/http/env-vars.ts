/**
 * @module Env var bodies (CC's EnvironmentVariablesValidator): string values,
 * names not empty, not starting with VCAP_ and not PORT (the platform sets
 * those); `=` and NUL cannot live in a process environment at all.
 */
import { z } from "zod";

/** Why a name cannot be set by a user, or null when it can. */
export function envNameProblem(name: string): string | null {
  if (name.length === 0) return "key must not be empty";
  if (name.startsWith("VCAP_")) return "cannot start with VCAP_";
  if (name === "PORT") return "cannot set PORT";
  if (name.includes("=") || name.includes("\0")) return "must not contain '=' or NUL";
  return null;
}

const checkNames = (vars: Record<string, unknown>, ctx: z.RefinementCtx) => {
  for (const name of Object.keys(vars)) {
    const problem = envNameProblem(name);
    if (problem) ctx.addIssue({ code: "custom", path: [name], message: problem });
  }
};

const value = z.string().refine((v) => !v.includes("\0"), "must not contain NUL");

/** Vars to set (app creation). */
export const envVarsSchema = z.record(z.string(), value).superRefine(checkNames);

/** A merge patch: a null value deletes the var. */
export const envPatchSchema = z.record(z.string(), value.nullable()).superRefine(checkNames);
