import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// "worker" runs inside workerd against a real local D1 with the migrations
// applied; "node" runs shared, agent, router and CLI tests on Node (as root,
// with the real registry started by the global setup), "router-node" the
// router's again on its Node data path, "e2e" the whole stack.
export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // A second, empty D1 for tests that apply migrations one by one to data (migrations.test.ts).
              d1Databases: ["MIGRATION_DB"],
              bindings: {
                TEST_MIGRATIONS: await readD1Migrations("migrations"),
                ADMIN_TOKEN: "test-admin-token",
                ADMIN_PASSWORD: "test-admin-password",
                TOKEN_SIGNING_KEY: "test-token-signing-key-0123456789abcdef",
                ENCRYPTION_KEY: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
                LONG_POLL_HOLD_MS: "300",
                // Short staging budget: the hanging-registry build fails in seconds.
                STAGING_TIMEOUT_MS: "4000",
                LOG_KEEP_LINES: "100",
                LOG_LINES_PER_SECOND: "50",
                // Tests silence cells seconds apart; the one-per-interval LOST limit is tested without I/O (test/shared/stalls.test.ts).
                LOST_CELL_INTERVAL_MS: "1",
              },
            },
          })),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts", "test/security/worker/**/*.test.ts"],
          // Staging tests wait out a registry that never answers (STAGING_TIMEOUT_MS); leave room on a loaded machine.
          testTimeout: 30_000,
          setupFiles: ["./test/worker/apply-migrations.ts"],
          // Registries and fault servers on loopback for the staging tests (workerd cannot start them).
          globalSetup: ["./test/support/worker-global-setup.ts"],
        },
      },
      {
        test: {
          name: "node",
          include: ["test/{shared,agent,router,cli,security,deploy}/**/*.test.ts"],
          // Attacks on the control plane that must run inside workerd are in the worker project.
          exclude: ["test/security/worker/**"],
          globalSetup: ["./test/support/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          pool: "forks",
        },
      },
      {
        // The router suite again on the Node proxy, the data path for hosts without
        // HAProxy ("node" runs it on HAProxy where installed): one suite, both paths.
        test: {
          name: "router-node",
          include: ["test/router/**/*.test.ts", "test/security/router-attacks.test.ts"],
          env: { BERTH_ROUTER_DATA_PATH: "node" },
          globalSetup: ["./test/support/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          pool: "forks",
        },
      },
      {
        // The whole stack: agents change host-wide state (ip_forward, nft tables),
        // so scripts/test.sh runs this project after the others, one file at a time.
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: ["./test/support/global-setup.ts"],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          pool: "forks",
          fileParallelism: false,
        },
      },
    ],
  },
});
