/**
 * @module Loads the native addon. Only agent/runtime/ and agent/rootfs/ (and the
 * image extractor's safe writer) import this; index.d.ts beside it types the surface.
 */
import { createRequire } from "node:module";
import type { NativeAddon } from "./native";

const require = createRequire(import.meta.url);

export const native: NativeAddon = require("./build/Release/berth_native.node");
