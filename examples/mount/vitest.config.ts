import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Each test starts a real process under tsx: slower than a unit test on 2 cores.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
