/**
 * @module Loads the native addon. Only agent/runtime/ and agent/rootfs/ (and the
 * image extractor's safe writer, and the router's HAProxy path for its access-line
 * pipe) import this; index.d.ts beside it types the surface.
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { NativeAddon } from "./native";

/**
 * Where node-gyp puts the addon and berth-init: agent/native/build/Release/,
 * relative to this module. The built agent (dist/agent/main.js, scripts/build.ts)
 * carries a copy at the same place relative to itself.
 */
export const NATIVE_BUILD_DIR = fileURLToPath(new URL("./build/Release/", import.meta.url));

export const native: NativeAddon = createRequire(import.meta.url)(`${NATIVE_BUILD_DIR}berth_native.node`);
