/** The native addon's surface: one interface per module (src/fs.cc, src/container.cc, src/net.cc). */
import type { NativeFs } from "./fs";
import type { NativeContainer } from "./container";
import type { NativeNet } from "./net";

export interface NativeAddon extends NativeFs, NativeContainer, NativeNet {}
