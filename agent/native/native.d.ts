/** The native addon's surface: one interface per module (src/fs.cc, src/container.cc). */
import type { NativeFs } from "./fs";
import type { NativeContainer } from "./container";

export interface NativeAddon extends NativeFs, NativeContainer {}
