/** The native addon's surface: one interface per module (src/fs.cc, src/layer_unpack.cc, src/container.cc, src/net.cc). */
import type { NativeFs } from "./fs";
import type { NativeLayer } from "./layer";
import type { NativeContainer } from "./container";
import type { NativeNet } from "./net";

export interface NativeAddon extends NativeFs, NativeLayer, NativeContainer, NativeNet {}

/**
 * What every module throws or rejects with when a call fails (src/sys.h),
 * in the agent or in a container's child (runc's initError): the step, the
 * call, its errno and the path or interface involved. The message is
 * "<step>: <syscall>[ <path>]: <strerror>[: <the callee's own text>]".
 */
export interface NativeError extends Error {
  name: "NativeError";
  step: string;
  syscall: string;
  errno: number;
  /** errno's name, e.g. "EPERM". */
  code: string;
  path: string;
}
