/** @module Recognising the addon's NativeError (step, syscall, errno, path) without `as`. */
import type { NativeError } from "./native";

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && e.name === "NativeError" && "step" in e && "syscall" in e && "errno" in e;
}
