import { defineConfig } from "vitest/config";

// Files run in parallel (2 cores here); each integration file starts its own throwaway
// servers on ports of its own, so files never collide.
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
