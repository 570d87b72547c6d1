import { defineConfig } from "vitest/config";

// The DNS suite starts a real dnsmasq and the file suite waits for fs events; on a shared
// CI box running every package at once, vitest's 5 s default is tight for a correct but
// slow run. Each awaited report has its own 5 s limit with a clearer message
// (testkit peerRecorder); no test asserts timings.
export default defineConfig({
  test: { testTimeout: 15_000, hookTimeout: 20_000 },
});
