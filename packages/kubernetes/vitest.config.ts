import { defineConfig } from "vitest/config";

// Every test talks to a mock API server on loopback; the slowest waits about a second on
// purpose (a watch kept alive by a bookmark). On a shared CI box running every package at
// once, vitest's 5 s default is tight for a correct but slow run; each awaited request or
// report has its own 5 s limit with a clearer message. No test asserts an upper bound on time.
export default defineConfig({
  test: { testTimeout: 15_000, hookTimeout: 20_000 },
});
