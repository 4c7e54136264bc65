import { defineConfig } from "drizzle-kit";

// SQL is generated here and applied with `wrangler d1 migrations apply` (never drizzle-kit push).
export default defineConfig({
  dialect: "sqlite",
  schema: "./worker/db/schema.ts",
  out: "./migrations",
});
