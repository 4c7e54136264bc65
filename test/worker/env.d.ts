// Types for tests inside workerd: the Worker's bindings plus the migrations the
// pool hands in, and the main module's exports for `exports.default.fetch`.
import type { Bindings } from "../../worker/env";

declare global {
  namespace Cloudflare {
    interface Env extends Bindings {
      TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
      /** Empty D1 for migration tests (vitest.config.ts). */
      MIGRATION_DB: D1Database;
    }
    interface GlobalProps {
      mainModule: typeof import("../../worker/index");
      durableNamespaces: "CellChannel" | "Scheduler" | "Stager" | "AppLogs";
    }
  }
}
