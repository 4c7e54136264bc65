// Types for tests inside workerd: the generated bindings (worker/bindings.d.ts)
// with the vars and secrets it cannot see, plus the migrations the pool hands in.
import type { UntypedBindings } from "../../worker/env";

declare global {
  namespace Cloudflare {
    interface Env extends UntypedBindings {
      TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
      /** Empty D1 for migration tests (vitest.config.ts). */
      MIGRATION_DB: D1Database;
    }
  }
}
