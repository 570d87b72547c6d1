import { defineConfig } from "vitest/config";

// Every test here talks over real sockets (and the cluster suite spawns processes); on a
// shared 2-core CI box running every package at once, 5 s (vitest's default) is too
// tight for a correct but slow run. Unit tests still assert no timings.
export default defineConfig({
  test: { testTimeout: 20_000, hookTimeout: 30_000 },
});
