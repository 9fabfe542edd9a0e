import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "webhook/**/*.test.ts", "certs/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Network-namespace suites share the kernel's netns list; running files in parallel is fine
    // because every suite names what it creates with its own per-run prefix.
    pool: "forks",
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
