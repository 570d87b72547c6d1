import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // The cluster tests start real processes on a 2-core machine: one file at a time keeps
    // them from starving each other (and keeps timeouts meaningful).
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
